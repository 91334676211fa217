#!/usr/bin/env python3
"""Write the demo store's catalog (config/stores/demo/catalog.csv).

The demo store is a Chinese electronics and home-appliance shop. Products, brands and prices are
written out here by hand so the file can be regenerated and reviewed; stock levels come from a
fixed seed so the file is the same on every run. Usage:
    python src/dialogue/scripts/make_demo_catalog.py [OUT.csv]
"""
from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

HEADER = ('sku', 'name_zh', 'name_en', 'aliases', 'category', 'category_zh', 'brand', 'brand_zh',
          'price_cny', 'zone', 'stock', 'tags', 'promotion')

BRANDS = {
    'Huawei': '华为', 'Xiaomi': '小米', 'Apple': '苹果', 'OPPO': 'OPPO', 'vivo': 'vivo',
    'Honor': '荣耀', 'Lenovo': '联想', 'Haier': '海尔', 'Midea': '美的', 'Gree': '格力',
    'Supor': '苏泊尔', 'Joyoung': '九阳', 'Sony': '索尼', 'Dyson': '戴森', 'Ecovacs': '科沃斯',
    'Roborock': '石头', 'Canon': '佳能', 'HP': '惠普', 'Nintendo': '任天堂', 'Epson': '爱普生',
    'Brother': '兄弟', 'Dell': '戴尔', 'TCL': 'TCL', 'Hisense': '海信', 'Skyworth': '创维',
    'Bose': 'Bose', 'Nikon': '尼康', 'Fujifilm': '富士', 'DJI': '大疆', 'Microsoft': '微软',
    'Philips': '飞利浦', 'Bear': '小熊', 'Panasonic': '松下', 'Zojirushi': '象印',
    'Galanz': '格兰仕', 'Delonghi': '德龙', 'Nespresso': '奈斯派索', 'Starbucks': '星巴克',
    'Siemens': '西门子', 'Ronshen': '容声', 'Casarte': '卡萨帝', 'LittleSwan': '小天鹅',
    'Dreame': '追觅', 'AOSmith': '史密斯', 'Laifen': '徕芬', 'Anker': '安克', 'Ugreen': '绿联',
}

# category id -> (Chinese name, zone id)
CATEGORIES = {
    'phone': ('手机', 'phones'), 'smartwatch': ('智能手表', 'phones'), 'tablet': ('平板电脑', 'phones'),
    'phone_accessory': ('手机配件', 'phones'), 'laptop': ('笔记本电脑', 'computers'),
    'printer': ('打印机', 'computers'), 'printer_ink': ('墨盒', 'computers'), 'tv': ('电视', 'audio_video'),
    'headphones': ('耳机', 'audio_video'), 'camera': ('相机', 'cameras_gaming'),
    'game_console': ('游戏机', 'cameras_gaming'), 'air_fryer': ('空气炸锅', 'kitchen'),
    'rice_cooker': ('电饭煲', 'kitchen'), 'microwave': ('微波炉', 'kitchen'),
    'coffee_machine': ('咖啡机', 'kitchen'), 'coffee_capsule': ('咖啡胶囊', 'kitchen'),
    'refrigerator': ('冰箱', 'large_appliances'), 'washing_machine': ('洗衣机', 'large_appliances'),
    'air_conditioner': ('空调', 'large_appliances'), 'vacuum': ('吸尘器', 'home_care'),
    'water_purifier': ('净水器', 'home_care'), 'water_filter': ('滤芯', 'home_care'),
    'hair_dryer': ('吹风机', 'home_care'),
}
CONSUMABLE = {'printer_ink', 'water_filter', 'coffee_capsule'}

# Promotions in the store's words.
P_2000_200 = '满2000减200'
P_5000_500 = '满5000减500'
P_TRADE_IN = '以旧换新补贴15%'
P_GIFT_CASE = '赠原装保护壳'
P_SECOND_HALF = '第二件半价'
P_FREE_INSTALL = '免费安装+送货上门'
P_INTEREST_FREE = '12期免息'

# (sku, name_zh, name_en, aliases, brand, price, tags, promotion), grouped by category.
PRODUCTS: dict[str, list[tuple[str, str, str, str, str, float, str, str]]] = {
    'phone': [
        ('HW-PURA70', '华为 Pura 70', 'Huawei Pura 70', 'P70|Pura70|华为P70', 'Huawei', 5499, '5g|flagship|photography', P_INTEREST_FREE),
        ('HW-MATE60P', '华为 Mate 60 Pro', 'Huawei Mate 60 Pro', 'Mate60|Mate 60|华为Mate60|麦特60', 'Huawei', 6499, '5g|flagship|satellite_call', P_5000_500),
        ('HW-NOVA12', '华为 nova 12', 'Huawei nova 12', 'nova12|诺瓦12', 'Huawei', 2999, '5g|selfie|slim', ''),
        ('HW-ENJOY70', '华为 畅享 70', 'Huawei Enjoy 70', '畅享70|Enjoy 70', 'Huawei', 1199, 'budget|long_battery', ''),
        ('MI-14', '小米14', 'Xiaomi 14', '小米 14|Mi 14|Xiaomi14', 'Xiaomi', 3999, '5g|flagship|photography|compact', P_2000_200),
        ('MI-14U', '小米14 Ultra', 'Xiaomi 14 Ultra', '小米14U|14 Ultra', 'Xiaomi', 6499, '5g|flagship|photography', P_5000_500),
        ('MI-RN13P', '红米 Note 13 Pro', 'Redmi Note 13 Pro', '红米Note13|Redmi Note 13|红米 note13 pro', 'Xiaomi', 1399, '5g|budget|long_battery', ''),
        ('MI-K70', '红米 K70', 'Redmi K70', 'K70|红米K70', 'Xiaomi', 2499, '5g|gaming|fast_charge', P_GIFT_CASE),
        ('AP-IP16', '苹果 iPhone 16', 'Apple iPhone 16', 'iPhone16|苹果16|爱疯16', 'Apple', 5999, '5g|ios|new_arrival', P_TRADE_IN),
        ('AP-IP16PM', '苹果 iPhone 16 Pro Max', 'Apple iPhone 16 Pro Max', 'iPhone 16 Pro Max|16 Pro Max|苹果16ProMax', 'Apple', 9999, '5g|ios|flagship|photography', P_TRADE_IN),
        ('AP-IP15', '苹果 iPhone 15', 'Apple iPhone 15', 'iPhone15|苹果15', 'Apple', 4999, '5g|ios', P_2000_200),
        ('OP-FINDX7', 'OPPO Find X7', 'OPPO Find X7', 'Find X7|FindX7', 'OPPO', 3999, '5g|flagship|photography', ''),
        ('OP-RENO11', 'OPPO Reno11', 'OPPO Reno11', 'Reno11|Reno 11', 'OPPO', 2499, '5g|selfie|slim', P_GIFT_CASE),
        ('OP-A3P', 'OPPO A3 Pro', 'OPPO A3 Pro', 'A3 Pro|A3Pro', 'OPPO', 1799, '5g|budget|durable', ''),
        ('VV-X100', 'vivo X100', 'vivo X100', 'X100', 'vivo', 3999, '5g|flagship|photography', P_2000_200),
        ('VV-S18', 'vivo S18', 'vivo S18', 'S18', 'vivo', 2299, '5g|selfie|slim', ''),
        ('VV-Y100', 'vivo Y100', 'vivo Y100', 'Y100', 'vivo', 1399, '5g|budget|long_battery', ''),
        ('HN-MAGIC6', '荣耀 Magic6', 'Honor Magic6', 'Magic6|Magic 6|荣耀magic6', 'Honor', 4399, '5g|flagship', ''),
        ('HN-X50', '荣耀 X50', 'Honor X50', 'X50|荣耀X50', 'Honor', 1399, '5g|budget|long_battery|durable', ''),
        ('HN-90', '荣耀 90', 'Honor 90', '荣耀90|Honor90', 'Honor', 2199, '5g|selfie', ''),
    ],
    'smartwatch': [
        ('HW-WGT4', '华为 WATCH GT 4', 'Huawei Watch GT 4', 'GT4|Watch GT4|华为手表GT4', 'Huawei', 1488, 'long_battery|fitness', ''),
        ('HW-W4P', '华为 WATCH 4 Pro', 'Huawei Watch 4 Pro', 'Watch 4 Pro|华为手表4Pro', 'Huawei', 3299, 'esim|health', P_2000_200),
        ('AP-AWS10', '苹果 Apple Watch Series 10', 'Apple Watch Series 10', 'Apple Watch|S10|苹果手表', 'Apple', 2999, 'ios|health|new_arrival', ''),
        ('AP-AWSE', '苹果 Apple Watch SE', 'Apple Watch SE', 'Watch SE|苹果手表SE', 'Apple', 1999, 'ios|fitness', ''),
        ('MI-WS3', '小米 Watch S3', 'Xiaomi Watch S3', 'Watch S3|小米手表', 'Xiaomi', 799, 'long_battery|fitness', ''),
        ('MI-BAND9', '小米手环9', 'Xiaomi Smart Band 9', '手环9|小米手环|Mi Band 9', 'Xiaomi', 249, 'budget|fitness', ''),
        ('HN-W4', '荣耀手表4', 'Honor Watch 4', 'Honor Watch|荣耀手表', 'Honor', 999, 'esim|long_battery', ''),
        ('OP-W4P', 'OPPO Watch 4 Pro', 'OPPO Watch 4 Pro', 'OPPO手表', 'OPPO', 2299, 'esim|health', ''),
    ],
    'tablet': [
        ('AP-IPADAIR', '苹果 iPad Air 11英寸', 'Apple iPad Air 11-inch', 'iPad Air|平板Air', 'Apple', 4799, 'ios|study|drawing', P_TRADE_IN),
        ('AP-IPAD10', '苹果 iPad 第十代', 'Apple iPad (10th gen)', 'iPad|iPad10|爱派', 'Apple', 2999, 'ios|study', P_2000_200),
        ('AP-IPADPRO', '苹果 iPad Pro 13英寸', 'Apple iPad Pro 13-inch', 'iPad Pro', 'Apple', 8999, 'ios|drawing|flagship', P_INTEREST_FREE),
        ('HW-MPP11', '华为 MatePad Pro 11', 'Huawei MatePad Pro 11', 'MatePad Pro|华为平板Pro', 'Huawei', 3699, 'study|drawing', P_2000_200),
        ('HW-MP115', '华为 MatePad 11.5', 'Huawei MatePad 11.5', 'MatePad|华为平板', 'Huawei', 1999, 'study|budget', ''),
        ('MI-PAD6', '小米平板6', 'Xiaomi Pad 6', 'Xiaomi Pad 6|小米平板|Pad 6', 'Xiaomi', 1999, 'study|gaming', ''),
        ('LN-XXPADP', '联想 小新Pad Pro 12.7', 'Lenovo Xiaoxin Pad Pro 12.7', '小新Pad|Xiaoxin Pad', 'Lenovo', 1699, 'study|budget|video', ''),
        ('HN-PAD9', '荣耀平板9', 'Honor Pad 9', 'Honor Pad 9|荣耀平板', 'Honor', 1499, 'study|budget', ''),
    ],
    'phone_accessory': [
        ('HW-CHG66', '华为 66W 超级快充充电器', 'Huawei 66W SuperCharge charger', '华为充电器|66W充电头', 'Huawei', 149, 'fast_charge', ''),
        ('AP-USBC20', '苹果 20W USB-C 电源适配器', 'Apple 20W USB-C power adapter', '苹果充电器|20W充电头', 'Apple', 149, 'ios', ''),
        ('AP-MAGSAFE', '苹果 MagSafe 充电器', 'Apple MagSafe charger', 'MagSafe|磁吸充电器', 'Apple', 329, 'ios|wireless', ''),
        ('MI-PB10K', '小米移动电源 10000mAh', 'Xiaomi power bank 10000mAh', '充电宝|移动电源|power bank', 'Xiaomi', 129, 'portable', P_SECOND_HALF),
        ('MI-WCHG', '小米无线充电器 50W', 'Xiaomi 50W wireless charger', '无线充|wireless charger', 'Xiaomi', 199, 'wireless|fast_charge', ''),
        ('AK-GAN65', '安克 65W 氮化镓充电器', 'Anker 65W GaN charger', '安克充电器|氮化镓|GaN charger', 'Anker', 199, 'fast_charge|portable', ''),
        ('UG-CABLE', '绿联 USB-C 数据线 1米', 'Ugreen USB-C cable 1 m', '数据线|充电线|type-c线', 'Ugreen', 39, 'budget', P_SECOND_HALF),
    ],
    'laptop': [
        ('LN-Y9000P', '联想 拯救者 Y9000P', 'Lenovo Legion Y9000P', '拯救者|Legion|Y9000P', 'Lenovo', 9999, 'gaming|high_performance', P_5000_500),
        ('LN-XXPRO16', '联想 小新 Pro 16', 'Lenovo Xiaoxin Pro 16', '小新Pro16|小新|Xiaoxin', 'Lenovo', 5499, 'office|study|large_screen', P_5000_500),
        ('LN-X1C', '联想 ThinkPad X1 Carbon', 'Lenovo ThinkPad X1 Carbon', 'ThinkPad|X1 Carbon|小黑', 'Lenovo', 12999, 'office|business|lightweight', P_INTEREST_FREE),
        ('AP-MBA13', '苹果 MacBook Air 13英寸 M3', 'Apple MacBook Air 13-inch M3', 'MacBook Air|Mac Air|苹果笔记本', 'Apple', 7999, 'macos|lightweight|long_battery', P_TRADE_IN),
        ('AP-MBP14', '苹果 MacBook Pro 14英寸', 'Apple MacBook Pro 14-inch', 'MacBook Pro|Mac Pro笔记本', 'Apple', 12999, 'macos|high_performance|creator', P_INTEREST_FREE),
        ('HW-MB14', '华为 MateBook 14', 'Huawei MateBook 14', 'MateBook 14|华为笔记本', 'Huawei', 5999, 'office|lightweight', P_5000_500),
        ('HW-MBXP', '华为 MateBook X Pro', 'Huawei MateBook X Pro', 'MateBook X Pro', 'Huawei', 10999, 'business|lightweight|flagship', P_INTEREST_FREE),
        ('MI-RB14', '红米 RedmiBook 14', 'Redmi Book 14', 'RedmiBook|红米笔记本', 'Xiaomi', 3999, 'study|budget|office', P_2000_200),
        ('HP-ZHAN66', '惠普 战66 14英寸', 'HP ProBook 440 (Zhan 66)', '战66|ProBook', 'HP', 4999, 'office|business|durable', P_2000_200),
        ('HP-OMEN10', '惠普 暗影精灵10', 'HP OMEN 10', '暗影精灵|OMEN|Omen 10', 'HP', 7499, 'gaming|high_performance', P_5000_500),
        ('DL-XPS13', '戴尔 XPS 13', 'Dell XPS 13', 'XPS|XPS13', 'Dell', 9999, 'business|lightweight', ''),
        ('HN-MB14', '荣耀 MagicBook 14', 'Honor MagicBook 14', 'MagicBook|荣耀笔记本', 'Honor', 4599, 'office|study|long_battery', ''),
    ],
    'printer': [
        ('HP-ST518', '惠普 Smart Tank 518 彩色喷墨打印机', 'HP Smart Tank 518 colour inkjet printer', 'Smart Tank 518|惠普喷墨|惠普518', 'HP', 999, 'home|colour|wifi', ''),
        ('HP-M232DW', '惠普 LaserJet M232dw 黑白激光打印机', 'HP LaserJet M232dw mono laser printer', 'M232dw|惠普激光', 'HP', 1599, 'office|laser|duplex|wifi', ''),
        ('CN-G3810', '佳能 PIXMA G3810 加墨式打印机', 'Canon PIXMA G3810 ink tank printer', 'G3810|佳能喷墨|佳能打印机', 'Canon', 999, 'home|colour|wifi|photo_print', ''),
        ('CN-MF643', '佳能 MF643Cdw 彩色激光一体机', 'Canon imageCLASS MF643Cdw colour laser', 'MF643|佳能激光', 'Canon', 2999, 'office|laser|colour|scanner', P_2000_200),
        ('EP-L3251', '爱普生 L3251 墨仓式打印机', 'Epson EcoTank L3251', 'L3251|爱普生打印机|EcoTank', 'Epson', 1099, 'home|colour|wifi', ''),
        ('BR-B7520', '兄弟 DCP-B7520DW 激光一体机', 'Brother DCP-B7520DW laser MFP', 'B7520|兄弟打印机', 'Brother', 1699, 'office|laser|duplex|scanner', ''),
    ],
    'printer_ink': [
        ('HP-INK682K', '惠普 682 黑色墨盒', 'HP 682 black ink cartridge', '682墨盒|惠普黑色墨盒', 'HP', 99, 'for_HP-ST518', ''),
        ('HP-GT53', '惠普 GT53 黑色墨水', 'HP GT53 black ink bottle', 'GT53|惠普墨水', 'HP', 59, 'for_HP-ST518', P_SECOND_HALF),
        ('HP-TN136A', '惠普 136A 硒鼓', 'HP 136A toner', '136A|惠普硒鼓|硒鼓', 'HP', 299, 'for_HP-M232DW', ''),
        ('CN-GI890', '佳能 GI-890 墨水 四色套装', 'Canon GI-890 ink set (4 colours)', 'GI-890|佳能墨水', 'Canon', 149, 'for_CN-G3810', ''),
        ('EP-003', '爱普生 003 墨水 四色套装', 'Epson 003 ink set (4 colours)', '003墨水|爱普生墨水', 'Epson', 169, 'for_EP-L3251', P_SECOND_HALF),
        ('BR-TNB020', '兄弟 TN-B020 粉盒', 'Brother TN-B020 toner', 'TN-B020|兄弟粉盒|粉盒', 'Brother', 299, 'for_BR-B7520', ''),
    ],
    'tv': [
        ('MI-TVA55', '小米电视 A55', 'Xiaomi TV A55', 'Redmi电视|小米电视55寸|A55', 'Xiaomi', 1599, '4k|budget|55_inch', ''),
        ('MI-TVS65', '小米电视 S65 Mini LED', 'Xiaomi TV S65 Mini LED', 'S65|小米65寸', 'Xiaomi', 3999, '4k|mini_led|65_inch', P_2000_200),
        ('HW-V75', '华为智慧屏 V75', 'Huawei Vision V75', '智慧屏|华为电视|V75', 'Huawei', 8999, '4k|smart_home|75_inch', P_5000_500),
        ('SN-X90L', '索尼 BRAVIA 65X90L', 'Sony BRAVIA 65X90L', 'X90L|索尼65寸|BRAVIA', 'Sony', 7999, '4k|gaming|65_inch', P_5000_500),
        ('SN-X85L', '索尼 BRAVIA 75X85L', 'Sony BRAVIA 75X85L', 'X85L|索尼75寸', 'Sony', 7499, '4k|75_inch', P_5000_500),
        ('TC-Q10K', 'TCL 75Q10K Mini LED', 'TCL 75Q10K Mini LED', 'Q10K|TCL电视', 'TCL', 7999, '4k|mini_led|75_inch', P_FREE_INSTALL),
        ('HS-E7K', '海信 65E7K', 'Hisense 65E7K', 'E7K|海信电视', 'Hisense', 4999, '4k|mini_led|65_inch', P_2000_200),
        ('SW-A3D', '创维 55A3D', 'Skyworth 55A3D', 'A3D|创维电视', 'Skyworth', 2299, '4k|budget|55_inch', ''),
    ],
    'headphones': [
        ('AP-APP2', '苹果 AirPods Pro 2', 'Apple AirPods Pro 2', 'AirPods Pro|AirPods|苹果耳机|爱破', 'Apple', 1899, 'ios|noise_cancelling|wireless', ''),
        ('AP-AP4', '苹果 AirPods 4', 'Apple AirPods 4', 'AirPods 4', 'Apple', 999, 'ios|wireless', ''),
        ('SN-XM5', '索尼 WH-1000XM5 头戴式降噪耳机', 'Sony WH-1000XM5 headphones', '1000XM5|XM5|索尼降噪耳机', 'Sony', 2499, 'noise_cancelling|over_ear|wireless', P_2000_200),
        ('SN-WFXM5', '索尼 WF-1000XM5 真无线耳机', 'Sony WF-1000XM5 earbuds', 'WF-1000XM5|索尼耳塞', 'Sony', 1999, 'noise_cancelling|wireless', ''),
        ('HW-FBP3', '华为 FreeBuds Pro 3', 'Huawei FreeBuds Pro 3', 'FreeBuds|华为耳机', 'Huawei', 1499, 'noise_cancelling|wireless', ''),
        ('MI-BUDS5', '小米 Buds 5', 'Xiaomi Buds 5', 'Buds 5|小米耳机', 'Xiaomi', 699, 'wireless|budget', ''),
        ('BO-QCU', 'Bose QuietComfort Ultra 耳机', 'Bose QuietComfort Ultra headphones', 'QC Ultra|博士耳机', 'Bose', 2999, 'noise_cancelling|over_ear', ''),
        ('OP-ENCOX2', 'OPPO Enco X2', 'OPPO Enco X2', 'Enco X2|OPPO耳机', 'OPPO', 999, 'noise_cancelling|wireless', ''),
    ],
    'camera': [
        ('CN-R50', '佳能 EOS R50 微单相机', 'Canon EOS R50 mirrorless camera', 'R50|佳能微单', 'Canon', 5499, 'mirrorless|beginner|vlog', P_5000_500),
        ('CN-R6M2', '佳能 EOS R6 Mark II', 'Canon EOS R6 Mark II', 'R6|R6二代', 'Canon', 14999, 'mirrorless|full_frame|pro', P_INTEREST_FREE),
        ('SN-A7M4', '索尼 Alpha 7 IV 全画幅微单', 'Sony Alpha 7 IV', 'A7M4|A7 IV|索尼微单', 'Sony', 15999, 'mirrorless|full_frame|pro', P_INTEREST_FREE),
        ('SN-ZVE10', '索尼 ZV-E10 Vlog相机', 'Sony ZV-E10 vlog camera', 'ZV-E10|索尼vlog', 'Sony', 4999, 'mirrorless|vlog|beginner', ''),
        ('NK-Z30', '尼康 Z30 微单相机', 'Nikon Z30', 'Z30|尼康微单', 'Nikon', 4699, 'mirrorless|vlog|beginner', ''),
        ('FJ-XT5', '富士 X-T5', 'Fujifilm X-T5', 'XT5|富士相机', 'Fujifilm', 11999, 'mirrorless|retro|pro', ''),
        ('DJ-POCKET3', '大疆 Osmo Pocket 3', 'DJI Osmo Pocket 3', 'Pocket 3|口袋相机|大疆云台相机', 'DJI', 3499, 'vlog|portable|gimbal', ''),
    ],
    'game_console': [
        ('NT-SWOLED', '任天堂 Switch OLED', 'Nintendo Switch OLED', 'Switch|NS|switch oled|斯维奇', 'Nintendo', 2399, 'family|portable', P_GIFT_CASE),
        ('NT-SWLITE', '任天堂 Switch Lite', 'Nintendo Switch Lite', 'Switch Lite|NS Lite', 'Nintendo', 1299, 'portable|budget', ''),
        ('SN-PS5S', '索尼 PlayStation 5 Slim', 'Sony PlayStation 5 Slim', 'PS5|PlayStation 5|PS5 Slim', 'Sony', 3599, '4k|family|exclusive_games', P_2000_200),
        ('SN-PSPORTAL', '索尼 PlayStation Portal', 'Sony PlayStation Portal', 'PS Portal|Portal', 'Sony', 1599, 'portable', ''),
        ('MS-XSX', '微软 Xbox Series X', 'Microsoft Xbox Series X', 'Xbox|XSX|Series X', 'Microsoft', 3899, '4k|game_pass', P_2000_200),
        ('MS-XSS', '微软 Xbox Series S', 'Microsoft Xbox Series S', 'XSS|Series S', 'Microsoft', 2399, 'budget|game_pass', ''),
    ],
    'air_fryer': [
        ('MD-AF55', '美的 空气炸锅 5.5L', 'Midea air fryer 5.5 L', '美的炸锅', 'Midea', 299, 'family|oil_free', P_SECOND_HALF),
        ('SP-AF6', '苏泊尔 可视空气炸锅 6L', 'Supor see-through air fryer 6 L', '苏泊尔炸锅', 'Supor', 349, 'family|oil_free|visible_window', ''),
        ('JY-AF55', '九阳 空气炸锅 5.5L', 'Joyoung air fryer 5.5 L', '九阳炸锅', 'Joyoung', 399, 'family|oil_free', ''),
        ('PH-HD9285', '飞利浦 HD9285 空气炸锅', 'Philips HD9285 air fryer', 'HD9285|飞利浦炸锅', 'Philips', 1099, 'premium|oil_free', ''),
        ('MI-AF4', '米家 智能空气炸锅 4L', 'Mijia smart air fryer 4 L', '米家炸锅', 'Xiaomi', 279, 'smart_home|compact', ''),
        ('BR-AF25', '小熊 迷你空气炸锅 2.5L', 'Bear mini air fryer 2.5 L', '小熊炸锅', 'Bear', 169, 'compact|budget|single_person', ''),
    ],
    'rice_cooker': [
        ('MD-RC40', '美的 智能电饭煲 4L', 'Midea smart rice cooker 4 L', '美的电饭锅', 'Midea', 299, 'family|budget', ''),
        ('SP-RCIH', '苏泊尔 球釜 IH 电饭煲 4L', 'Supor IH rice cooker 4 L', '苏泊尔电饭锅|球釜', 'Supor', 699, 'ih_heating|family', ''),
        ('JY-RC40', '九阳 电饭煲 4L', 'Joyoung rice cooker 4 L', '九阳电饭锅', 'Joyoung', 399, 'family', ''),
        ('PN-RCIH', '松下 IH 电饭煲 5L', 'Panasonic IH rice cooker 5 L', '松下电饭锅', 'Panasonic', 1599, 'ih_heating|premium', ''),
        ('MI-RC3', '米家 IH 电饭煲 3L', 'Mijia IH rice cooker 3 L', '米家电饭锅', 'Xiaomi', 399, 'ih_heating|smart_home|compact', ''),
        ('ZJ-NWQAH', '象印 NW-QAH10C 压力IH电饭煲', 'Zojirushi NW-QAH10C pressure IH cooker', '象印电饭锅', 'Zojirushi', 2599, 'ih_heating|premium|pressure', ''),
    ],
    'microwave': [
        ('MD-MW21', '美的 微波炉 21L', 'Midea microwave 21 L', '美的微波炉', 'Midea', 399, 'budget|compact', ''),
        ('GL-MW23', '格兰仕 光波炉 23L', 'Galanz grill microwave 23 L', '格兰仕微波炉|光波炉', 'Galanz', 459, 'grill', ''),
        ('GL-MW25S', '格兰仕 变频微波炉 25L', 'Galanz inverter microwave 25 L', '格兰仕变频', 'Galanz', 799, 'inverter|grill', ''),
        ('MD-MWSC', '美的 蒸烤炸微一体机 25L', 'Midea steam-bake microwave combo 25 L', '美的蒸烤箱|微蒸烤', 'Midea', 1599, 'steam|oven|premium', ''),
        ('PN-MWGF', '松下 变频微波炉 27L', 'Panasonic inverter microwave 27 L', '松下微波炉', 'Panasonic', 1299, 'inverter|premium', ''),
    ],
    'coffee_machine': [
        ('DL-ECAM22', '德龙 ECAM22.110 全自动咖啡机', 'Delonghi ECAM22.110 bean-to-cup', 'ECAM22|德龙全自动', 'Delonghi', 3999, 'bean_to_cup|milk_frother', P_2000_200),
        ('DL-EC685', '德龙 Dedica EC685 半自动咖啡机', 'Delonghi Dedica EC685 espresso', 'EC685|Dedica', 'Delonghi', 1999, 'espresso|compact', ''),
        ('PH-EP2136', '飞利浦 EP2136 全自动咖啡机', 'Philips EP2136 bean-to-cup', 'EP2136|飞利浦咖啡机', 'Philips', 2999, 'bean_to_cup', ''),
        ('NS-ESSMINI', '奈斯派索 Essenza Mini 胶囊咖啡机', 'Nespresso Essenza Mini', 'Essenza|雀巢胶囊机|Nespresso', 'Nespresso', 999, 'capsule|compact', P_SECOND_HALF),
        ('NS-VERTUO', '奈斯派索 Vertuo Next 胶囊咖啡机', 'Nespresso Vertuo Next', 'Vertuo|胶囊咖啡机', 'Nespresso', 1299, 'capsule', ''),
        ('MI-CAPS', '米家 胶囊咖啡机', 'Mijia capsule coffee machine', '米家咖啡机|心想咖啡机', 'Xiaomi', 499, 'capsule|budget|compact', ''),
    ],
    'coffee_capsule': [
        ('NS-ROMA10', '奈斯派索 Ispirazione Roma 胶囊 10粒', 'Nespresso Ispirazione Roma capsules ×10', 'Roma胶囊|罗马', 'Nespresso', 45, 'for_NS-ESSMINI|espresso', ''),
        ('NS-VTMIX', '奈斯派索 Vertuo 混合装胶囊 30粒', 'Nespresso Vertuo mixed capsules ×30', 'Vertuo胶囊', 'Nespresso', 219, 'for_NS-VERTUO', P_SECOND_HALF),
        ('NS-ORIG50', '奈斯派索 经典胶囊 50粒', 'Nespresso Original capsules ×50', '经典胶囊', 'Nespresso', 229, 'for_NS-ESSMINI', ''),
        ('SB-CAPS10', '星巴克 Nespresso兼容胶囊 10粒', 'Starbucks Nespresso-compatible capsules ×10', '星巴克胶囊', 'Starbucks', 59, 'for_NS-ESSMINI|espresso', ''),
        ('MI-CAPS20', '米家 咖啡胶囊 20粒', 'Mijia coffee capsules ×20', '米家胶囊|心想胶囊', 'Xiaomi', 99, 'for_MI-CAPS', ''),
    ],
    'refrigerator': [
        ('HR-BCD470', '海尔 十字对开门冰箱 470L', 'Haier French-door refrigerator 470 L', '海尔冰箱|十字门', 'Haier', 5299, 'energy_class_1|inverter|family', P_FREE_INSTALL),
        ('HR-BCD218', '海尔 三门冰箱 218L', 'Haier three-door refrigerator 218 L', '海尔小冰箱', 'Haier', 1499, 'budget|compact', P_FREE_INSTALL),
        ('MD-BCD606', '美的 对开门冰箱 606L', 'Midea side-by-side refrigerator 606 L', '美的冰箱|对开门', 'Midea', 3499, 'energy_class_1|large_capacity', P_FREE_INSTALL),
        ('SM-KA92', '西门子 对开门冰箱 KA92NV02TI', 'Siemens side-by-side refrigerator KA92NV02TI', '西门子冰箱', 'Siemens', 6999, 'inverter|large_capacity|premium', P_5000_500),
        ('RS-BCD529', '容声 十字四门冰箱 529L', 'Ronshen four-door refrigerator 529 L', '容声冰箱', 'Ronshen', 3299, 'energy_class_1|family', ''),
        ('CS-BCD650', '卡萨帝 法式多门冰箱 650L', 'Casarte French-door refrigerator 650 L', '卡萨帝冰箱', 'Casarte', 14999, 'premium|large_capacity', P_INTEREST_FREE),
        ('MI-BCD610', '米家 对开门冰箱 610L', 'Mijia side-by-side refrigerator 610 L', '米家冰箱|小米冰箱', 'Xiaomi', 2699, 'smart_home|large_capacity|budget', P_FREE_INSTALL),
    ],
    'washing_machine': [
        ('HR-EG100', '海尔 滚筒洗衣机 10公斤', 'Haier front-load washer 10 kg', '海尔洗衣机|海尔滚筒', 'Haier', 2199, 'front_load|energy_class_1', P_FREE_INSTALL),
        ('HR-HBNS100', '海尔 洗烘一体机 10公斤', 'Haier washer-dryer 10 kg', '海尔洗烘一体', 'Haier', 3999, 'front_load|dryer|energy_class_1', P_FREE_INSTALL),
        ('LS-TG100V88', '小天鹅 水魔方 滚筒洗衣机 10公斤', 'Little Swan front-load washer 10 kg', '小天鹅洗衣机|水魔方', 'LittleSwan', 2799, 'front_load|quiet', P_FREE_INSTALL),
        ('MD-MB100', '美的 波轮洗衣机 10公斤', 'Midea top-load washer 10 kg', '美的洗衣机|波轮', 'Midea', 1099, 'top_load|budget', P_FREE_INSTALL),
        ('SM-WG54', '西门子 滚筒洗衣机 10公斤 WG54B2X00W', 'Siemens front-load washer 10 kg WG54B2X00W', '西门子洗衣机', 'Siemens', 4299, 'front_load|premium|quiet', P_2000_200),
        ('MI-WM10', '米家 滚筒洗衣机 10公斤', 'Mijia front-load washer 10 kg', '米家洗衣机|小米洗衣机', 'Xiaomi', 1699, 'front_load|smart_home|budget', P_FREE_INSTALL),
    ],
    'air_conditioner': [
        ('GR-YUNJIA15', '格力 云佳 1.5匹 变频挂机', 'Gree Yunjia 1.5 HP inverter wall AC', '格力空调|云佳|格力挂机', 'Gree', 2899, 'inverter|energy_class_1|wall_mounted', P_FREE_INSTALL),
        ('GR-YUNJIN15', '格力 云锦III 1.5匹 新一级能效', 'Gree Yunjin III 1.5 HP wall AC', '云锦', 'Gree', 3599, 'inverter|energy_class_1|quiet|wall_mounted', P_TRADE_IN),
        ('GR-YUNYI3', '格力 云逸 3匹 立式柜机', 'Gree Yunyi 3 HP floor-standing AC', '格力柜机|云逸', 'Gree', 6999, 'inverter|floor_standing|large_room', P_5000_500),
        ('MD-FZ15', '美的 风尊 1.5匹 变频空调', 'Midea Fengzun 1.5 HP inverter AC', '风尊|美的空调', 'Midea', 3199, 'inverter|energy_class_1|wall_mounted', P_FREE_INSTALL),
        ('MD-KSD1', '美的 酷省电 1匹 挂机', 'Midea Kushengdian 1 HP wall AC', '酷省电|美的1匹', 'Midea', 2299, 'inverter|energy_saving|small_room', P_FREE_INSTALL),
        ('HR-JY15', '海尔 静悦 1.5匹 变频空调', 'Haier Jingyue 1.5 HP inverter AC', '静悦|海尔空调', 'Haier', 2699, 'inverter|quiet|wall_mounted', P_FREE_INSTALL),
        ('MI-AC15', '米家 巨省电 1.5匹 空调', 'Mijia 1.5 HP energy-saving AC', '小米空调|巨省电', 'Xiaomi', 2199, 'inverter|smart_home|budget', ''),
    ],
    'vacuum': [
        ('DY-V12', '戴森 V12 Detect Slim 无线吸尘器', 'Dyson V12 Detect Slim cordless vacuum', 'V12|戴森吸尘器', 'Dyson', 4490, 'cordless|lightweight|premium', P_2000_200),
        ('DY-V15', '戴森 V15 Detect 无线吸尘器', 'Dyson V15 Detect cordless vacuum', 'V15|戴森V15', 'Dyson', 5490, 'cordless|premium|pet_hair', P_5000_500),
        ('EC-T30P', '科沃斯 地宝 T30 PRO 扫地机器人', 'Ecovacs Deebot T30 Pro robot vacuum', '地宝|T30|扫地机器人|扫地机', 'Ecovacs', 3999, 'robot|mopping|self_emptying', P_2000_200),
        ('EC-X5P', '科沃斯 地宝 X5 PRO 扫拖机器人', 'Ecovacs Deebot X5 Pro robot vacuum', 'X5 PRO|地宝X5', 'Ecovacs', 5999, 'robot|mopping|self_cleaning|premium', P_5000_500),
        ('RR-G20S', '石头 G20S 扫拖机器人', 'Roborock G20S robot vacuum', 'G20S|石头扫地机', 'Roborock', 5999, 'robot|mopping|self_cleaning|premium', P_5000_500),
        ('RR-P10P', '石头 P10 Pro 扫拖机器人', 'Roborock P10 Pro robot vacuum', 'P10 Pro|石头P10', 'Roborock', 3299, 'robot|mopping|self_emptying', ''),
        ('MI-G11', '米家 无线吸尘器 G11', 'Mijia cordless vacuum G11', 'G11|小米吸尘器', 'Xiaomi', 1499, 'cordless|budget', ''),
        ('DR-X40', '追觅 X40 扫拖机器人', 'Dreame X40 robot vacuum', 'X40|追觅扫地机', 'Dreame', 6499, 'robot|mopping|self_cleaning|premium', ''),
    ],
    'water_purifier': [
        ('MI-WP1200', '米家 净水器 1200G', 'Mijia water purifier 1200G', '小米净水器|米家净水', 'Xiaomi', 2999, 'ro|large_flow|smart_home', P_FREE_INSTALL),
        ('MD-BZ1000', '美的 白泽 净水器 1000G', 'Midea Baize water purifier 1000G', '白泽|美的净水器', 'Midea', 1999, 'ro|large_flow', P_FREE_INSTALL),
        ('HR-WP1000', '海尔 净水器 1000G', 'Haier water purifier 1000G', '海尔净水器', 'Haier', 2199, 'ro|large_flow', P_FREE_INSTALL),
        ('AO-WP800', '史密斯 佳尼特 净水器 800G', 'A.O. Smith water purifier 800G', '史密斯净水器|佳尼特', 'AOSmith', 3999, 'ro|premium|long_life_filter', P_2000_200),
    ],
    'water_filter': [
        ('MI-WFPPC', '米家 净水器 PPC复合滤芯', 'Mijia purifier PPC composite filter', 'PPC滤芯|小米滤芯', 'Xiaomi', 199, 'for_MI-WP1200', ''),
        ('MI-WFRO', '米家 净水器 RO反渗透滤芯 1200G', 'Mijia purifier RO filter 1200G', 'RO滤芯|反渗透滤芯', 'Xiaomi', 599, 'for_MI-WP1200', ''),
        ('MD-WFRO', '美的 白泽 RO滤芯', 'Midea Baize RO filter', '白泽滤芯|美的滤芯', 'Midea', 499, 'for_MD-BZ1000', ''),
        ('HR-WFCP', '海尔 净水器 复合滤芯', 'Haier purifier composite filter', '海尔滤芯', 'Haier', 299, 'for_HR-WP1000', ''),
        ('AO-WFRO', '史密斯 RO膜滤芯', 'A.O. Smith RO membrane filter', '史密斯滤芯|RO膜', 'AOSmith', 799, 'for_AO-WP800', ''),
    ],
    'hair_dryer': [
        ('DY-HD15', '戴森 Supersonic HD15 吹风机', 'Dyson Supersonic HD15 hair dryer', 'Supersonic|戴森吹风机|HD15', 'Dyson', 2999, 'premium|fast_dry|gift', P_2000_200),
        ('DY-HD08', '戴森 Supersonic HD08 吹风机', 'Dyson Supersonic HD08 hair dryer', 'HD08', 'Dyson', 2499, 'premium|gift', ''),
        ('PN-NA0J', '松下 纳米水离子吹风机 EH-NA0J', 'Panasonic nanoe hair dryer EH-NA0J', 'NA0J|松下吹风机', 'Panasonic', 1299, 'hair_care|gift', ''),
        ('MI-H501', '米家 高速吹风机 H501', 'Mijia high-speed hair dryer H501', 'H501|小米吹风机', 'Xiaomi', 299, 'fast_dry|budget', P_SECOND_HALF),
        ('PH-BHD', '飞利浦 负离子吹风机', 'Philips ionic hair dryer', '飞利浦吹风机', 'Philips', 199, 'budget|hair_care', ''),
        ('LF-SE', '徕芬 SE 高速吹风机', 'Laifen SE high-speed hair dryer', '徕芬|莱芬|Laifen', 'Laifen', 399, 'fast_dry|lightweight', ''),
    ],
}

# Products the demo shows as sold out (so that "in stock" matters in answers and recommendations).
SOLD_OUT = {'VV-Y100', 'HW-MATE60P', 'AP-AWSE', 'SN-XM5', 'NT-SWLITE', 'DY-HD08', 'CN-R6M2', 'MD-MWSC'}


def rows(seed: int = 20261124) -> list[dict[str, str]]:
    """All catalog rows, stock drawn from a fixed seed (bulky items are stocked thinner)."""
    rng = random.Random(seed)
    out = []
    for category, items in PRODUCTS.items():
        category_zh, zone = CATEGORIES[category]
        for sku, name_zh, name_en, aliases, brand, price, tags, promotion in items:
            tag_list = tags.split('|') if tags else []
            if category in CONSUMABLE:
                tag_list.insert(0, 'consumable')
            high = 6 if zone == 'large_appliances' else 40
            stock = 0 if sku in SOLD_OUT else rng.randint(2, high)
            out.append({
                'sku': sku, 'name_zh': name_zh, 'name_en': name_en, 'aliases': aliases,
                'category': category, 'category_zh': category_zh, 'brand': brand,
                'brand_zh': BRANDS[brand], 'price_cny': f'{price:.2f}', 'zone': zone,
                'stock': str(stock), 'tags': '|'.join(tag_list), 'promotion': promotion,
            })
    return out


def main(argv: list[str]) -> int:
    default = Path(__file__).resolve().parents[3] / 'config' / 'stores' / 'demo' / 'catalog.csv'
    out = Path(argv[1]) if len(argv) > 1 else default
    out.parent.mkdir(parents=True, exist_ok=True)
    data = rows()
    tmp = out.with_suffix('.csv.tmp')
    with tmp.open('w', newline='', encoding='utf-8') as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER)
        writer.writeheader()
        writer.writerows(data)
    tmp.replace(out)
    print(f'wrote {len(data)} products in {len(PRODUCTS)} categories to {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
