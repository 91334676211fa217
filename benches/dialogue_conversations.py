"""Accuracy per kind on two multi-turn conversation sets, run through `retailbot chat --json` exactly
as the test does, and the utterance -> reply time inside it:
- issue 13's set over the harbour store (tests/data/dialogue);
- issue 24's evaluation over three stores the dialogue was not written for
  (benches/data/dialogue_stores: a phone & digital shop with brand corners, a big-appliance floor, a
  department-store floor; 765 dialogues, half Mandarin, half English, written before the code).

    .venv/bin/python benches/dialogue_conversations.py [--failures]
Prints, per set and kind, the share of dialogues with every turn right (and the failures with
--failures), and the median and p99 of the in-process turn time over all of them (peer: the NLU
parse alone, same run).
"""
import json
import statistics
from collections import Counter
import subprocess
import sys
import time
from pathlib import Path

from retail_common.catalog import load_catalog
from retail_dialogue.conversations import score, script, turn_objects
from retail_dialogue.manager import DialogueManager
from retail_dialogue.standalone import StandaloneRobot, catalog_recommender
from retail_common.store import load_store

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / 'tests' / 'data' / 'dialogue'
STORE = DATA / 'harbour_store'
EVAL = REPO / 'benches' / 'data' / 'dialogue_stores'


def timed_turns(dialogues, store_dir):
    store = load_store(store_dir)
    manager = DialogueManager(store)
    robot = StandaloneRobot(manager, catalog_recommender(store.catalog))
    turn, parse = [], []
    for track, d in enumerate(dialogues, 1):
        robot.customer(track)
        for t in d['turns']:
            started = time.perf_counter()
            robot.say(track, t['say'])
            turn.append(time.perf_counter() - started)
            started = time.perf_counter()
            manager.nlu.parse(t['say'])
            parse.append(time.perf_counter() - started)
        robot.run(manager.on_customer_left(track))
        robot.end_missions()
    return turn, parse


def ms(samples):
    samples = sorted(samples)
    return statistics.median(samples) * 1000, samples[int(len(samples) * 0.99)] * 1000


def run_set(title: str, dialogues: list[dict], store_dir: Path, show_failures: bool):
    """One store's dialogues through `retailbot chat --json`: its Score, and the timed turns."""
    done = subprocess.run([str(Path(sys.prefix) / 'bin' / 'retailbot'), 'chat', '--json', '--store', str(store_dir)],
                          input='\n'.join(script(dialogues)) + '\n', capture_output=True, text=True, timeout=900)
    result = score(dialogues, turn_objects(done.stdout), load_catalog(store_dir / 'catalog.csv'))
    return result, timed_turns(dialogues, store_dir)


def report(title: str, results: list, dialogues: list[dict], show_failures: bool) -> None:
    dialogues_n, passed, failures = Counter(), Counter(), []
    for result in results:
        dialogues_n.update(result.dialogues)
        passed.update(result.passed)
        failures += result.failures
    turns = sum(len(d['turns']) for d in dialogues)
    total = sum(dialogues_n.values())
    print(f'{title}: {total} dialogues, {turns} turns, {sum(d["lang"] == "en" for d in dialogues)} in English: '
          f'{sum(passed.values()) / total:.1%} with every turn right')
    for rule in sorted(dialogues_n):
        print(f'  {rule:28s} {passed[rule] / dialogues_n[rule]:6.1%}  ({dialogues_n[rule]} dialogues)')
    if show_failures:
        for failure in failures:
            print(f'  FAIL {failure}')
    else:
        print(f'  ({len(failures)} failures; --failures lists them)')


def main() -> int:
    show = '--failures' in sys.argv
    turn: list[float] = []
    parse: list[float] = []
    harbour = [json.loads(line) for line in (DATA / 'conversations.jsonl').read_text(encoding='utf-8').splitlines()]
    result, (t, p) = run_set('harbour', harbour, STORE, show)
    turn += t
    parse += p
    report('issue 13 set, harbour store', [result], harbour, show)
    evaluation = [json.loads(line) for line in (EVAL / 'conversations.jsonl').read_text(encoding='utf-8').splitlines()]
    results = []
    for name in sorted({d['store'] for d in evaluation}):
        mine = [d for d in evaluation if d['store'] == name]
        result, (t, p) = run_set(name, mine, EVAL / name, show)
        turn += t
        parse += p
        results.append(result)
        print(f'  {name}: {result.accuracy:.1%} of {len(mine)}')
    report('issue 24 evaluation, 3 new stores', results, evaluation, show)
    (turn_med, turn_p99), (parse_med, parse_p99) = ms(turn), ms(parse)
    print(f'turn (with dialogue state, recommender, simulated guide): median {turn_med:.2f} ms  p99 {turn_p99:.2f} ms')
    print(f'peer NLU parse alone: median {parse_med:.2f} ms  p99 {parse_p99:.2f} ms  '
          f'(turn/parse {turn_med / parse_med:.1f}x); goal median < 5 ms: {"met" if turn_med < 5 else "NOT met"}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
