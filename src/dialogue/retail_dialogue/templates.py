"""What the robot says, in Mandarin and English: one place to read and reword every reply, and
the English grammar the replies need (plurals, articles, counts) for any store's categories and
brands.

Category ids are snake_case English words from the catalog ("air_fryer", "headphones", "tv");
`noun()` turns them into English nouns, `plural()`/`article()` follow English spelling rules
with the exceptions stores need (headphones is already plural, ink has no plural, "an LG TV").
"""
from __future__ import annotations

import re

# English nouns for category ids that are not plain words, and nouns with no plural form.
NOUNS = {'tv': 'TV', 'pc': 'PC', 'phone_accessory': 'phone accessory', 'ac': 'air conditioner'}
PLURAL_ONLY = frozenset({'headphones', 'earphones', 'earbuds', 'speakers set', 'scissors', 'glasses', 'tongs'})
UNCOUNTABLE = frozenset({'ink', 'printer ink', 'toner', 'software', 'furniture', 'equipment', 'cookware',
                         'luggage', 'bedding', 'jewellery', 'jewelry', 'stationery'})
IRREGULAR = {'man': 'men', 'foot': 'feet', 'mouse': 'mice', 'knife': 'knives', 'shelf': 'shelves',
             'person': 'people', 'child': 'children'}
# Letters whose English name starts with a vowel sound: "an LG TV", "an HP printer", "an SUV".
_VOWEL_SOUND_LETTERS = set('AEFHILMNORSX')
_CONSONANT_SOUND_PREFIXES = ('uni', 'use', 'usb', 'euro', 'eu', 'one', 'once', 'ubi', 'uti', 'ugreen', 'ufo')
_SILENT_H = ('hour', 'honest', 'honor', 'honour', 'heir')


def noun(category: str) -> str:
    """English noun (singular, or the plural-only word) for a category id: air_fryer -> air fryer,
    tv -> TV, e_bike -> e-bike (a one-letter prefix is hyphenated)."""
    if category in NOUNS:
        return NOUNS[category]
    return re.sub(r'^([a-z])_', r'\1-', category).replace('_', ' ')


def plural(phrase: str) -> str:
    """English plural of a noun phrase (its last word): air fryer -> air fryers, TV -> TVs,
    battery -> batteries, headphones -> headphones, printer ink -> printer ink, box -> boxes."""
    if not phrase:
        return phrase
    head, _, last = phrase.rpartition(' ')
    lower = last.lower()
    if phrase.lower() in PLURAL_ONLY or lower in PLURAL_ONLY or phrase.lower() in UNCOUNTABLE or lower in UNCOUNTABLE:
        return phrase
    if lower in IRREGULAR:
        word = IRREGULAR[lower]
    elif last.isupper() and len(last) > 1:
        word = last + 's'                                     # TVs, PCs
    elif re.search(r'(s|x|z|ch|sh)$', lower):
        word = last + 'es'
    elif re.search(r'[^aeiou]y$', lower):
        word = last[:-1] + 'ies'
    else:
        word = last + 's'
    return f'{head} {word}' if head else word


def is_plural_only(phrase: str) -> bool:
    last = phrase.rpartition(' ')[2].lower()
    return phrase.lower() in PLURAL_ONLY or last in PLURAL_ONLY


def is_uncountable(phrase: str) -> bool:
    return phrase.lower() in UNCOUNTABLE or phrase.rpartition(' ')[2].lower() in UNCOUNTABLE


def verb_are(phrase: str) -> str:
    """'are' for a plural subject ('Air fryers are'), 'is' for an uncountable one ('Printer ink is')."""
    return 'is' if is_uncountable(phrase) else 'are'


def count_of(count: int, phrase: str) -> str:
    """'1 air fryer', '3 Huawei tablets', '1 pair of headphones', '2 kinds of printer ink'."""
    if is_uncountable(phrase):
        return f'{count} {"kind" if count == 1 else "kinds"} of {phrase}'
    if is_plural_only(phrase):
        return f'{count} {"pair" if count == 1 else "pairs"} of {phrase}'
    return f'{count} {phrase if count == 1 else plural(phrase)}'


def article(phrase: str) -> str:
    """'a' or 'an' for the sound `phrase` starts with: an Apple laptop, a Huawei phone, an LG TV,
    an HP printer, a USB cable, an hour."""
    word = phrase.strip().split(' ')[0] if phrase.strip() else ''
    if not word:
        return 'a'
    letters = re.sub(r'[^A-Za-z0-9]', '', word)
    if not letters:
        return 'a'
    if letters[0].isdigit():
        return 'an' if re.match(r'(8|11|18|80)', letters) and not re.match(r'(8\d\d|11\d\d)', letters) else 'a'
    if len(letters) > 1 and letters.isupper() and not re.fullmatch(r'[A-Z][A-Z]+[AEIOU][A-Z]*', letters):
        return 'an' if letters[0] in _VOWEL_SOUND_LETTERS else 'a'     # initialisms: HP, LG, TCL
    lower = letters.lower()
    if lower.startswith(_SILENT_H):
        return 'an'
    if lower.startswith(_CONSONANT_SOUND_PREFIXES):
        return 'a'
    return 'an' if lower[0] in 'aeiou' else 'a'


def with_article(phrase: str) -> str:
    """'an Apple laptop'; plural-only and uncountable nouns take none ('headphones', 'printer ink')."""
    if is_plural_only(phrase) or is_uncountable(phrase):
        return phrase
    return f'{article(phrase)} {phrase}'


def count_noun(count: int, singular: str, plural_form: str | None = None) -> str:
    """'1 pick', '3 picks', '0 models'."""
    return f'{count} {singular if count == 1 else (plural_form or plural(singular))}'


def what_en(category: str = '', brand: str = '', many: bool = True) -> str:
    """English for 'what the customer asked about': 'Apple laptops', 'an Apple laptop',
    'air fryers', 'Huawei products' (a brand alone), 'products'."""
    thing = noun(category) if category else 'product'
    phrase = f'{brand} {thing}' if brand else thing
    return plural(phrase) if many else with_article(phrase)


def what_zh(category_zh: str = '', brand_zh: str = '') -> str:
    """Chinese for the same: 苹果笔记本电脑, 华为的商品, 商品."""
    if category_zh:
        return f'{brand_zh}{category_zh}'
    return f'{brand_zh}的商品' if brand_zh else '商品'


def yuan(price: float, lang: str) -> str:
    """A price as said to a customer: 5499元 / 5,499 yuan (no .00; cents only when there are some)."""
    text = f'{price:,.0f}' if price == int(price) else f'{price:,.2f}'
    return f'{text.replace(",", "")}元' if lang != 'en' else f'{text} yuan'


def join_en(items: list[str]) -> str:
    """'A', 'A and B', 'A, B and C'."""
    if len(items) <= 1:
        return ''.join(items)
    return ', '.join(items[:-1]) + ' and ' + items[-1]


TEMPLATES: dict[str, tuple[str, str]] = {
    'confirm_product': ('您是说{name}吗？', 'Did you mean the {name}?'),
    'confirm_product_again': ('抱歉，我听错了。请再说一遍您要找的商品名称。',
                              'Sorry, I misheard. Could you say the name of the product again?'),
    'greet_anonymous': ('您好，欢迎光临！请问有什么可以帮您？', 'Hello, welcome! How can I help you today?'),
    'greet_member': ('{name}您好，欢迎回来！今天想看点什么？', 'Hello {name}, welcome back! What are you looking for today?'),
    'greet_member_returning': ('{name}您好，欢迎回来！{last}，今天接着帮您看看吗？',
                               'Hello {name}, welcome back! {last}. Shall we pick up from there?'),
    # a greeting that carries a member's campaign: these first, then the offer (campaign_offer)
    'greet_member_lead': ('{name}您好，欢迎回来！', 'Hello {name}, welcome back! '),
    'greet_member_returning_lead': ('{name}您好，欢迎回来！{last}。', 'Hello {name}, welcome back! {last}. '),
    'greet_anonymous_lead': ('您好，欢迎光临！', 'Hello, welcome! '),
    'greet_vip': ('{name}您好，欢迎光临！您今天{time}预约了{purpose}，需要我为您签到吗？',
                  'Hello {name}, welcome! You have an appointment for {purpose} at {time}. Shall I check you in?'),
    'vip_appointment': ('{name}，您今天{time}预约了{purpose}，需要我为您签到吗？',
                        '{name}, you have an appointment for {purpose} at {time}. Shall I check you in?'),
    'member_recognised': ('{name}，原来是您！有什么可以帮您？', 'Nice to see you again, {name}. What can I do for you?'),
    'greet_back': ('您好！请问需要什么帮助？', 'Hi! What can I do for you?'),
    'ask_need': ('请问您想看哪类产品？比如{examples}。', 'What kind of product are you looking for, for example {examples}?'),
    'ask_budget': ('好的，您想看{what}。您的预算大概多少？', 'Sure, {what}. What is your budget?'),
    'thanks': ('不客气，很高兴为您服务！', "You're welcome, happy to help!"),
    'goodbye': ('感谢光临，再见！', 'Thank you for visiting, goodbye!'),
    'silence_goodbye': ('如果还需要帮助，随时叫我。再见！', 'If you need anything else, just call me. Goodbye!'),
    'anything_else': ('好的。还有什么可以帮您？', 'All right. Anything else I can help with?'),
    'unknown': ('抱歉，这个我没听明白。我可以帮您找商品、查价格和优惠、推荐产品、带路或者带您参观。',
                "Sorry, I didn't catch that. I can find products, tell prices and promotions, recommend, "
                'show you the way or show you around.'),
    'too_long': ('抱歉，这段话太长了，我只能听懂简短的一句话。请简单说一下您想找什么？',
                 'Sorry, that was too long for me. Could you tell me in a few words what you are looking for?'),
    # opening hours (behaviours/hours.py): the hours in effect, HH:MM local time
    'hours_open': ('我们今天营业到{close}，营业时间是{open}到{close}。还有什么可以帮您？',
                   "We're open today until {close}; our hours are {open} to {close}. Anything else I can help with?"),
    'hours_closing_soon': ('我们{close}打烊，还有{minutes}分钟。营业时间是{open}到{close}。',
                           "We close at {close}, in {minutes} minutes. Our hours are {open} to {close}."),
    'hours_closed': ('我们现在不在营业时间，营业时间是每天{open}到{close}。',
                     "We're closed right now. Our hours are {open} to {close} every day."),
    'out_of_scope': ('抱歉，这个我回答不了。我可以帮您找商品、查价格和优惠、推荐产品或者带路。',
                     "Sorry, I can't help with that. I can find products, tell prices and promotions, recommend, "
                     'or show you the way.'),
    'offer_staff': ('抱歉，我还是没听明白。需要我请一位店员来帮您吗？',
                    "Sorry, I still didn't understand. Shall I ask a member of staff to help you?"),
    'promotion_list_here': ('{zone}现在的优惠有：{items}。', 'The offers here at {zone}: {items}.'),
    'promotion_nothing_here': ('{zone}这里目前没有优惠活动。', 'There are no offers at {zone} right now.'),
    'not_sold': ('抱歉，本店不卖{what}。还有什么可以帮您？', "Sorry, we don't sell {what} here. Anything else I can help with?"),
    'sizes_we_have': ('{what}有这些尺寸：{sizes}。', 'We have {what} in {sizes}.'),
    'not_carried': ('抱歉，本店没有{what}。', "Sorry, we don't carry {what}."),
    'not_carried_alternatives': ('抱歉，本店没有{what}。{other}有：{items}。',
                                 "Sorry, we don't carry {what}. We do have {other}: {items}."),
    'brand_has': ('{brand}在本店有{categories}。', 'From {brand} we have {categories}.'),
    'have_one': ('有的，{what}有1款有货，在{zone}：{items}。需要我带您过去吗？',
                 'Yes, we have {count_what} in stock, in {zone}: {items}. Shall I take you there?'),
    'have_yes': ('有的，{what}有{count}款有货，{low}到{high}，在{zone}。比如：{items}。需要我带您过去吗？',
                 'Yes, we have {count_what} in stock, from {low} to {high}, in {zone}. For example: {items}. '
                 'Shall I take you there?'),
    'have_sold_out_all': ('{what}目前都缺货了。', 'Sorry, all our {what} {are} sold out at the moment.'),
    'product_in_stock': ('有的，{name}有现货，售价{price}，在{zone}。{promotion}需要我带您过去吗？',
                         'Yes, the {name} {be} in stock at {price}, in {zone}. {promotion}Shall I take you there?'),
    'product_sold_out': ('抱歉，{name}目前缺货。', 'Sorry, the {name} {be} sold out at the moment.'),
    'alternatives': ('有货的同类商品有：{items}。需要我带您去{zone}看看吗？',
                     'In stock instead: {items}. Shall I take you to {zone} to see them?'),
    'no_alternatives': ('暂时也没有同类的有货商品，需要我帮您叫店员吗？',
                        'There is nothing similar in stock either; shall I call a member of staff?'),
    'product_about': ('{name}：售价{price}，{stock}，在{zone}。{promotion}需要我带您过去吗？',
                      'The {name}: {price}, {stock}, in {zone}. {promotion}Shall I take you there?'),
    'in_stock': ('有现货', 'in stock'),
    'sold_out': ('目前缺货', 'currently sold out'),
    'category_where': ('{what}在{zone}。需要我带您过去吗？', '{what} {are} in {zone}. Shall I take you there?'),
    'price': ('{name}售价{price}，{stock}。{promotion}', 'The {name} {be} {price}, {stock}. {promotion}'),
    'price_range': ('{what}的价格在{low}到{high}之间，共{count}款有货。需要我帮您推荐吗？',
                    '{what}: from {low} to {high}, {count_models} in stock. Would you like a recommendation?'),
    'which_product': ('请问您想问哪一款产品？', 'Which product would you like to know about?'),
    'promotion_one': ('{name}现在的优惠：{promotion}。', 'Current offer on the {name}: {promotion}. '),
    'promotion_none': ('{name}目前没有优惠活动。', 'There is no offer on the {name} right now.'),
    'promotion_list': ('现在的优惠有：{items}。需要我带您去看看吗？', 'Current offers: {items}. Shall I take you to one of them?'),
    'promotion_list_what': ('{what}现在的优惠有：{items}。', 'Current offers on {what}: {items}.'),
    'promotion_nothing': ('目前没有优惠活动。', 'There are no promotions at the moment.'),
    'promotion_nothing_what': ('{what}目前没有优惠活动。', 'There are no offers on {what} at the moment.'),
    'recommend_intro': ('为您推荐{count}款：{items}。需要我带您去{zone}看看吗？',
                        'Here {are} {count_picks}: {items}. Shall I take you to {zone} to see {them}?'),
    'recommend_item': ('{rank}. {name}，{price}，{reason}', '{rank}. {name}, {price}: {reason}'),
    'recommend_none': ('抱歉，没有找到符合条件的有货商品。要不要放宽一下预算？',
                       'Sorry, nothing in stock matches. Would you like to widen the budget?'),
    'recommend_failed': ('抱歉，推荐服务暂时不可用，我帮您叫店员吧。', 'Sorry, recommendations are unavailable right now; let me call a member of staff.'),
    'over_budget': ('{what}没有{budget}以内的，最便宜的是{name}，{price}。需要我带您去看看吗？',
                    'We have no {what} within {budget}; the cheapest is the {name} at {price}. Shall I take you to see it?'),
    'refine_none': ('抱歉，没有找到{what}了。', "Sorry, I couldn't find any {what}."),
    'cheaper_none': ('这已经是最便宜的有货款了。', 'That is already the cheapest one in stock.'),
    'bigger_none': ('这已经是最大的有货款了。', 'That is already the biggest one in stock.'),
    'other_none': ('符合条件的就这些了。', "That's all we have that matches."),
    'compare': ('{a}和{b}：{points}。', '{a} and {b}: {points}.'),
    # the points of a comparison, joined into {points} above
    'compare_cheaper': ('{name}便宜{diff}', 'the {name} is {diff} cheaper'),
    'compare_same_price': ('价格一样', 'they cost the same'),
    'compare_offer': ('{name}有优惠（{promotion}）', 'the {name} has an offer ({promotion})'),
    'compare_sold_out': ('{name}目前缺货', 'the {name} is sold out'),
    'compare_bigger': ('{name}尺寸更大', 'the {name} is bigger'),
    'compare_first': ('第一款{name}是我更推荐的', 'my first suggestion is the {name}'),
    # one product in a list: a search's examples, promotions, a tour stop's offers
    'list_item': ('{name}（{price}）', 'the {name} ({price})'),
    'promotion_item': ('{name} {price}，{promotion}', 'the {name} at {price}: {promotion}'),
    'stop_offer_item': ('{name}（{promotion}）', 'the {name} ({promotion})'),
    'staff_anyone': ('店员', 'a member of staff'),
    'products_here': ('商品', 'The products'),
    'product_here': ('{name}', 'The {name}'),
    'refer_none': ('请问您说的是哪一款？我还没有给您介绍商品。', "Which one do you mean? I haven't shown you any products yet."),
    'guide_start': ('好的，请跟我来，我们去{zone}。', 'Sure, please follow me to {zone}.'),
    'guide_arrived_product': ('我们到了，这里是{zone}。{what}就在这里，您可以慢慢看，还有什么可以帮您？',
                              'Here we are: {zone}. {what_cap} {are} right here; take your time. Anything else I can help with?'),
    'guide_arrived_place': ('我们到了，这里是{zone}。{extra}', 'Here we are: {zone}. {extra}'),
    'arrived_restroom': ('洗手间就在这里。', 'The restrooms are right here.'),
    'arrived_vip_lounge': ('请在这里稍坐，工作人员马上来接待您。', 'Please have a seat; a member of staff will be with you shortly.'),
    'arrived_checkout': ('您可以在这里结账。', 'You can pay here.'),
    'arrived_service_desk': ('服务台的同事可以帮您办理售后和咨询。', 'The service desk team can help you with after-sales and questions.'),
    'arrived_exit': ('出口就在这里，欢迎下次光临！', 'The exit is right here. Thank you for visiting!'),
    'arrived_entrance': ('入口就在这里。', 'This is the entrance.'),
    'arrived_other': ('还有什么可以帮您？', 'Anything else I can help with?'),
    'guide_failed': ('抱歉，{reason}。{zone}在店内，需要我请店员带您过去吗？',
                     'Sorry, {reason}. Shall I ask a member of staff to take you to {zone}?'),
    'guide_safety_stopped': ('抱歉，我需要工作人员检查一下才能移动，已经帮您叫了店员。{zone}在店内，店员会带您过去。',
                             "Sorry, I need a staff member to check me before I can move; I've called someone, "
                             'and they can take you to {zone}.'),
    'guide_step_aside': ('不好意思，请让我过一下，谢谢！', 'Excuse me, may I get past? Thank you!'),
    'guide_on_way': ('去{zone}还有大约{metres}米。', 'About {metres} to {zone}.'),
    'guide_cancelled': ('好的，不去了。还有什么可以帮您？', "All right, we'll stop here. Anything else I can help with?"),
    'unknown_zone': ('抱歉，我不知道这个地方在哪里。', "Sorry, I don't know where that is."),
    'enrol_consent': ('好的！为了下次认出您，我会保存您的人脸特征：加密存放在本店的机器人上，不会上传，您随时可以要求删除。'
                      '您同意吗？不想刷脸的话，店员也可以用手机号为您登记。',
                      'Gladly! To recognise you next time I would keep a description of your face: encrypted, on this '
                      "store's robot only, never uploaded, and deleted whenever you ask. Do you agree? If you'd rather "
                      'not use your face, a member of staff can sign you up with your phone number.'),
    'enrol_declined': ('好的，不保存您的人脸。需要的话店员可以用手机号为您登记会员。',
                       "All right, I won't keep your face. A member of staff can sign you up with your phone number if you like."),
    'enrol_done': ('好了{name}，您已经是会员了，下次见面我就能认出您。', "Done{name}, you're a member now; I'll recognise you next time."),
    'enrol_failed': ('抱歉，这次没有登记成功，可能是我没看清您的脸。我请店员用手机号为您登记吧。',
                     "Sorry, that didn't work, perhaps I couldn't see your face well. Let me ask a member of staff to "
                     'sign you up with your phone number.'),
    'already_member': ('{name}，您已经是我们的会员了。', "{name}, you're already one of our members."),
    'staff_called': ('好的，我已经通知店员，马上过来，请稍等。', "Sure, I've called a member of staff; they'll be right with you."),
    'tour_start': ('好的，我带您参观一下，一共{count}站，第一站是{zone}。请跟我来！您可以随时说"下一站"、"跳过"或者"结束参观"。',
                   "Sure, let me show you around: {count_stops}, starting with {zone}. Please follow me! "
                   'Say "next", "skip" or "stop" at any time.'),
    'tour_start_still': ('我现在需要工作人员检查一下才能移动，已经帮您叫了店员。', "I need a staff member to check me before I can move; I've called someone."),
    'tour_stop': ('这里是{zone}。{narration}', 'This is {zone}. {narration}'),
    'tour_stop_auto': ('这里有{categories}。', 'Here you will find {categories}.'),
    'tour_stop_promotions': ('这里正在优惠的有：{items}。', 'On promotion here: {items}.'),
    'tour_end': ('参观结束了，谢谢您！还有什么可以帮您？', "That's the end of the tour, thank you! Anything else I can help with?"),
    'tour_stopped': ('好的，参观到这里结束。还有什么可以帮您？', "All right, we'll end the tour here. Anything else I can help with?"),
    'tour_next': ('好的，我们去下一站。', "Sure, on to the next stop."),
    'tour_skip': ('好的，{zone}我们就跳过了。', "Sure, we'll skip {zone}."),
    'tour_failed': ('抱歉，{reason}，参观只能先到这里了。', "Sorry, {reason}, so the tour has to end here."),
    'no_tour': ('抱歉，本店还没有设置参观路线。', "Sorry, this store has no showroom tour set up."),
    'checkin_ask': ('请问您的姓名和预约时间？', 'May I have your name and the time of your appointment?'),
    'checkin_ok': ('{name}，签到成功！{staff}会在{zone}接待您。需要我带您过去吗？',
                   "{name}, you're checked in! {staff} will meet you at {zone}. Shall I take you there?"),
    'checkin_early': ('{name}，您的预约是{time}，现在还早。已为您签到，您可以先在{zone}休息，需要我带您过去吗？',
                      "{name}, your appointment is at {time}, you're a bit early. You're checked in; you can wait at {zone}. Shall I take you there?"),
    'checkin_late': ('{name}，您的预约是{time}，稍微晚了一点，没关系，我已通知{staff}。需要我带您去{zone}吗？',
                     "{name}, your appointment was at {time}; no problem, I've told {staff} you're here. Shall I take you to {zone}?"),
    'checkin_missed': ('{name}，您{time}的预约已经过了，我帮您联系{staff}重新安排。',
                       "{name}, your {time} appointment has passed; I'll ask {staff} to rearrange it."),
    'checkin_unknown': ('抱歉，没有找到您的预约。我已通知店员来帮您。', "Sorry, I can't find your appointment. I've asked a member of staff to help you."),
    # HQ's campaigns (behaviours/campaign.py): HQ's sentence, then the offer to go and see
    'campaign_offer': ('{message}在{zone}，需要我带您去看看吗？', '{message} It is in {zone}. Shall I take you there?'),
    'campaign_offer_here': ('{message}', '{message}'),
}

# Customer-facing words for the guide's outcome codes (GuideTo/Tour result `reason`). An internal
# code is never spoken: anything not listed here is said as 'I can't move right now'.
FAILURE_REASONS: dict[str, tuple[str, str]] = {
    'blocked': ('路被挡住了，我暂时过不去', "the way is blocked and I can't get through right now"),
    'unreachable': ('我找不到过去的路', "I can't find a way there from here"),
    'safety_stop': ('我需要工作人员检查一下才能移动', 'I need a staff member to check me before I can move'),
    'cancelled': ('行程已经取消了', 'the trip was cancelled'),
    'unknown_zone': ('我不知道这个地方在哪里', "I don't know where that is"),
    'unknown_tour': ('本店没有这条参观路线', "this store has no such tour"),
    'lost': ('我需要确认一下自己的位置', 'I need to check where I am'),
    'not_localised': ('我还不确定自己在店里的位置', "I'm not sure yet where I am in the store"),
    'no_odometry': ('我的轮子没有回应', "my wheels aren't responding"),
    'no_lidar': ('我现在看不清前面的路，需要工作人员帮我检查', "I can't see the way ahead right now; a staff member needs to check me"),
    'battery_low': ('我的电量不足，需要去充电', 'my battery is low and I need to recharge'),
    'bad_frame': ('我不知道这个地方在地图上的哪里', "I can't find that place on my map"),
    'preempted': ('我刚才接到了另一个任务', 'I was given another task'),
    'shutdown': ('我正在关机', "I'm shutting down"),
    'rejected': ('我现在没法接受新的行程', "I can't take a new trip right now"),
}
_DEFAULT_REASON = ('我现在没法移动', "I can't move right now")


def failure_reason(code: str, lang: str) -> str:
    """Customer-facing words for a guide outcome code; never the code itself."""
    zh, en = FAILURE_REASONS.get(code, _DEFAULT_REASON)
    return en if lang == 'en' else zh


def render(key: str, lang: str, **values: object) -> str:
    """The template `key` in `lang` ('zh' or 'en'), filled in, with spacing tidied."""
    zh, en = TEMPLATES[key]
    text = (en if lang == 'en' else zh).format(**values)
    return re.sub(r'\s{2,}', ' ', text).strip()
