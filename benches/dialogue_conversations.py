"""Accuracy per rule on the multi-turn conversation set (harbour store, not the demo), run through
`retailbot chat --json` exactly as the test does, and the utterance -> reply time inside it.

    .venv/bin/python benches/dialogue_conversations.py
Prints, per rule, the share of dialogues with every turn right, the failures, and the median and
p99 of the in-process turn time over the same set (peer: the NLU parse alone, same run).
"""
import json
import statistics
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


def timed_turns(dialogues):
    store = load_store(STORE)
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


def main() -> int:
    dialogues = [json.loads(line) for line in (DATA / 'conversations.jsonl').read_text(encoding='utf-8').splitlines()]
    done = subprocess.run([str(Path(sys.prefix) / 'bin' / 'retailbot'), 'chat', '--json', '--store', str(STORE)],
                          input='\n'.join(script(dialogues)) + '\n', capture_output=True, text=True, timeout=600)
    result = score(dialogues, turn_objects(done.stdout), load_catalog(STORE / 'catalog.csv'))
    turns = sum(len(d['turns']) for d in dialogues)
    print(f'{len(dialogues)} dialogues, {turns} turns, {sum(d["lang"] == "en" for d in dialogues)} in English: '
          f'{result.accuracy:.1%} with every turn right')
    for rule, accuracy in result.per_rule().items():
        print(f'  {rule:28s} {accuracy:6.1%}  ({result.dialogues[rule]} dialogues)')
    for failure in result.failures:
        print(f'  FAIL {failure}')
    turn, parse = timed_turns(dialogues)
    (turn_med, turn_p99), (parse_med, parse_p99) = ms(turn), ms(parse)
    print(f'turn (with dialogue state, recommender, simulated guide): median {turn_med:.2f} ms  p99 {turn_p99:.2f} ms')
    print(f'peer NLU parse alone: median {parse_med:.2f} ms  p99 {parse_p99:.2f} ms  '
          f'(turn/parse {turn_med / parse_med:.1f}x); goal median <= 50 ms: {"met" if turn_med <= 50 else "NOT met"}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
