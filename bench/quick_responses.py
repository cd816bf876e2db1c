"""Quick responses measured on CLINC150 (real crowd-sourced utterances, ../shared/data/clinc150).

CLINC's small-talk intents are mapped to the pack's; every other intent and every
out-of-scope query is a real request that a template must not answer. The split is
`bench/clinc_split.py`'s: the head is trained and the per-intent thresholds tuned (highest
recall with at most --target-ff false fires) on `train` + `val` of the tuning side only; the
figures are reported on `test` + `oos_test` of both sides, the held-out domains beside the
tuned-on ones. An intent whose template ends the call is held to a stricter bar: no false fire
at all on the tuning data, and a probability of at least --strict-floor.

    .venv/bin/python bench/quick_responses.py            # report with the pack's thresholds
    .venv/bin/python bench/quick_responses.py --tune     # tune on the tuning side, write, report
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# This file shares its name with the package it measures: keep its folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np
import yaml

from quick_responses.head import OTHER, IntentHead, head_path
from quick_responses.pack import DEFAULT_PACK, load_pack, thresholds_path
from quick_responses.responder import QuickResponder
from voice_agent.rag.encoder import Encoder, load_sentence_model

# Only now, with the package imported under its own name: the split lives beside this file.
sys.path.insert(0, str(Path(__file__).resolve().parent))
import clinc_split

MAPPING = clinc_split.PACK_INTENTS  # CLINC intent -> the pack intents answering it
# Small talk the pack has no template for: counted neither as recall nor as a false fire.
UNMAPPED_SMALL_TALK = {"maybe", "cancel"}


@dataclass
class Scored:
    text: str
    label: str  # CLINC intent, or "oos"
    intent: str | None  # pack intent recognized before thresholds (exact/rule: final)
    score: float
    kind: str
    margin_ok: bool
    guard: str | None


def score_all(
    responder: QuickResponder, rows: list[tuple[str, str]], vectors: np.ndarray
) -> list[Scored]:
    """Everything about each utterance that does not depend on the thresholds."""
    out = []
    open_gate = {i: 0.0 for i in responder.pack.intents}
    for (text, label), vector in zip(rows, vectors, strict=True):
        with_thresholds(responder, open_gate)
        d = responder.decide(text, vector)
        margin_ok = True
        if responder.head is None and (
            d.kind == "embedding" or (d.kind == "none" and d.candidates)
        ):
            runner = d.candidates[1].score if len(d.candidates) > 1 else -1.0
            margin_ok = d.candidates[0].score - runner >= responder.pack.margin
        if responder.head is not None or d.intent:
            intent = d.intent  # the head's "other" is no intent at all
        else:  # below threshold: keep the nearest intent so tuning can lower its threshold
            intent = d.candidates[0].intent if d.candidates else None
        out.append(Scored(text, label, intent, d.score, d.kind, margin_ok, d.guard))
    return out


def with_thresholds(responder: QuickResponder, thresholds: dict[str, float]) -> None:
    from dataclasses import replace

    for name, spec in responder.pack.intents.items():
        if spec.threshold != thresholds[name]:
            responder.pack.intents[name] = replace(spec, threshold=thresholds[name])


def is_negative(s: Scored) -> bool:
    """A real request: any intent that is not small talk, or out of scope."""
    return s.label not in MAPPING and s.label not in UNMAPPED_SMALL_TALK


def fires(s: Scored, thresholds: dict[str, float]) -> str | None:
    """The pack intent that would answer `s` under `thresholds`, or None."""
    if s.intent is None or s.guard is not None:
        return None
    if s.kind in ("exact", "rule"):
        return s.intent
    return s.intent if s.margin_ok and s.score >= thresholds[s.intent] else None


def tune(
    scored: list[Scored],
    intents: list[str],
    target_ff: float,
    floor: float = 0.99,
    strict: dict[str, float] | None = None,
) -> dict[str, float]:
    """Spend the false-fire budget where it buys the most recall: start every intent at 0.99
    and, move by move, lower the threshold that answers the most small talk per false fire,
    each move only as far as the next piece of small talk, while the false fires stay within
    the budget. Thresholds never go below 0.41. A `strict` intent (its template ends the call)
    never spends any of the budget and never goes below its own floor."""
    strict = strict or {}
    negatives = [s for s in scored if is_negative(s)]
    budget = int(target_ff * len(negatives))

    def eligible(s: Scored) -> bool:
        return s.kind == "embedding" or (s.kind == "none" and s.intent is not None)

    pos: dict[str, list[float]] = defaultdict(list)
    neg: dict[str, list[float]] = defaultdict(list)
    for s in scored:
        if s.intent is None or s.guard is not None or not s.margin_ok or not eligible(s):
            continue
        if s.label in MAPPING and s.intent in MAPPING[s.label]:
            pos[s.intent].append(s.score)
        elif is_negative(s):
            neg[s.intent].append(s.score)
    thresholds = dict.fromkeys(intents, 0.99)
    spent = sum(sum(v >= 0.99 for v in neg[i]) for i in intents)
    while True:
        best: tuple[float, str, float, int] | None = None
        for intent in intents:
            t = thresholds[intent]
            below = [v for v in pos[intent] if 0.41 <= v < t]
            if not below:
                continue
            # The next threshold that answers one more piece of small talk, and what it costs.
            lower = math.floor(max(below) * 100) / 100
            gain = sum(lower <= v < t for v in pos[intent])
            cost = sum(lower <= v < t for v in neg[intent])
            if spent + cost > budget or (intent in strict and (cost or lower < strict[intent])):
                continue
            value = gain / (cost + 0.01)
            if best is None or value > best[0]:
                best = (value, intent, lower, cost)
        if best is None:
            extended = extend(thresholds, neg, floor)
            return {i: max(v, strict.get(i, 0.0)) for i, v in extended.items()}
        _, intent, lower, cost = best
        thresholds[intent] = lower
        spent += cost


def extend(
    thresholds: dict[str, float], neg: dict[str, list[float]], floor: float
) -> dict[str, float]:
    """Tuning data is thin (20 utterances an intent in val): a threshold stops at its lowest
    positive. Where going further down to `floor` costs no false fire on it, go."""
    out = dict(thresholds)
    for intent, t in thresholds.items():
        if t > floor and not any(floor <= v < t for v in neg[intent]):
            out[intent] = floor
    return out


def rates(scored: list[Scored], thresholds: dict[str, float]) -> tuple[float, float]:
    """(recall on mapped small talk, false-fire rate on real requests)."""
    positives = [s for s in scored if s.label in MAPPING]
    negatives = [s for s in scored if is_negative(s)]
    recall = sum(fires(s, thresholds) in MAPPING[s.label] for s in positives) / len(positives)
    return recall, sum(bool(fires(s, thresholds)) for s in negatives) / len(negatives)


def report(scored: list[Scored], thresholds: dict[str, float], title: str) -> None:
    positives = [s for s in scored if s.label in MAPPING]
    negatives = [s for s in scored if is_negative(s)]
    per_intent: dict[str, list[bool]] = defaultdict(list)
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    for s in positives:
        got = fires(s, thresholds)
        per_intent[s.label].append(got in MAPPING[s.label])
        confusion[s.label][got or "(none)"] += 1
    false = [s for s in negatives if fires(s, thresholds)]
    hits = sum(sum(v) for v in per_intent.values())
    print(f"\n## {title}\n")
    print(f"recall on mapped small talk: {hits}/{len(positives)} ({hits / len(positives):.1%})")
    print(
        f"false fires on other intents + out of scope: {len(false)}/{len(negatives)} "
        f"({len(false) / len(negatives):.2%})"
    )
    print("\n| CLINC intent | pack intent(s) | recall | answered as |\n|---|---|---|---|")
    for label in MAPPING:
        ok = per_intent[label]
        top = ", ".join(f"{k} {v}" for k, v in confusion[label].most_common(4))
        print(f"| {label} | {', '.join(sorted(MAPPING[label]))} | {sum(ok)}/{len(ok)} | {top} |")
    if false:
        print("\nfalse fires:")
        for s in false[:15]:
            print(f"- {s.text!r} ({s.label}) -> {fires(s, thresholds)} {s.score:.3f} {s.kind}")
    guarded = Counter((s.guard or "").split(":")[0] for s in scored if s.guard)
    print(f"\nguards fired (all utterances): {dict(guarded.most_common())}")
    lost = Counter(
        (s.guard or "below threshold").split(":")[0].split(" (")[0]
        for s in positives
        if fires(s, thresholds) not in MAPPING[s.label]
    )
    print(f"small talk not answered, by cause: {dict(lost.most_common())}")


def latency(responder: QuickResponder, encoder: Encoder, rows: list[tuple[str, str]]) -> None:
    exact_texts = [e for i in responder.pack.intents.values() for e in i.examples][:300]
    exact_ms = []
    for text in exact_texts:
        started = time.perf_counter()
        responder.decide(text)
        exact_ms.append((time.perf_counter() - started) * 1000)
    embed_ms = []
    for text, _ in rows[:400]:
        started = time.perf_counter()
        vector = encoder.encode_sync([text])[0] if responder.needs_vector(text) else None
        responder.decide(text, vector)
        embed_ms.append((time.perf_counter() - started) * 1000)
    print("\n| match | n | p50 (ms) | p99 (ms) |\n|---|---|---|---|")
    for name, values in (("exact hit", exact_ms), ("with the embedding step", embed_ms)):
        values.sort()
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
        print(f"| {name} | {len(values)} | {statistics.median(values):.3f} | {p99:.3f} |")


def train_head(
    responder: QuickResponder,
    rows: list[tuple[str, str]],
    vectors: np.ndarray,
    strength: float,
) -> IntentHead:
    """Pack examples and CLINC train: mapped small talk as its pack intent, every other intent
    and out-of-scope query as `other` (CLINC small talk without a template is left out)."""
    from sklearn.linear_model import LogisticRegression

    pack = responder.pack
    texts_x = [responder._vectors]  # the pack examples' vectors
    labels = [i.name for i in pack.intents.values() for _ in i.examples]
    keep, keep_labels = [], []
    for row, ((_, label), vector) in enumerate(zip(rows, vectors, strict=True)):
        if label in UNMAPPED_SMALL_TALK:
            continue
        if label in MAPPING:
            choices = MAPPING[label]
            if len(choices) == 1:
                target = next(iter(choices))
            else:  # CLINC greeting holds both "hello" and "how have you been"
                target = next(
                    c.intent for c in responder._ranked(vector, top=20) if c.intent in choices
                )
        else:
            target = OTHER
        keep.append(row)
        keep_labels.append(target)
    x = np.vstack([*texts_x, vectors[keep]])
    y = labels + keep_labels
    model = LogisticRegression(C=strength, max_iter=3000)
    model.fit(x, y)
    provenance = (
        f"trained {datetime.now(UTC):%Y-%m-%d} by bench/quick_responses.py on the pack's "
        f"{len(labels)} examples and CLINC150 train ({len(keep)} utterances; Larson et al. 2019, "
        f"CC BY 3.0), logistic regression C={strength}"
    )
    return IntentHead(
        tuple(str(c) for c in model.classes_),
        np.asarray(model.coef_, dtype=np.float32),
        np.asarray(model.intercept_, dtype=np.float32),
        provenance,
    )


def ending_false_fires(scored: list[Scored], thresholds: dict[str, float], ending: set[str]) -> int:
    """Utterances that would end the call without the caller saying goodbye."""
    return sum(fires(s, thresholds) in ending and s.label != "goodbye" for s in scored)


def summary(sides: dict[str, list[Scored]], thresholds: dict[str, float], ending: set[str]) -> None:
    print(
        "\n| test split | small talk | recall | real requests | false fires | false call endings |"
        "\n|---|---|---|---|---|---|"
    )
    for name, scored in sides.items():
        recall, false_rate = rates(scored, thresholds)
        positives = sum(s.label in MAPPING for s in scored)
        negatives = sum(is_negative(s) for s in scored)
        endings = ending_false_fires(scored, thresholds, ending)
        print(
            f"| {name} | {positives} | {recall:.1%} | {negatives} | {false_rate:.2%} | {endings} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clinc", type=Path, default=clinc_split.CLINC)
    parser.add_argument("--tune", action="store_true", help="train and tune, then write")
    parser.add_argument("--target-ff", type=float, default=0.003, help="false-fire budget")
    parser.add_argument(
        "--strict-floor",
        type=float,
        default=0.9,
        help="lowest probability at which a template that ends the call may answer",
    )
    parser.add_argument(
        "--runtime", choices=["auto", "onnx", "onnx-int8", "torch"], default="auto",
        help="the encoder's runtime (VOICE_AGENT_ENCODER_RUNTIME): measure another's quality",
    )  # fmt: skip
    parser.add_argument(
        "--precision", choices=["float32", "bfloat16"], default="float32",
        help="the encoder's precision (VOICE_AGENT_ENCODER_PRECISION; bfloat16 runs on torch)",
    )  # fmt: skip
    args = parser.parse_args()

    def rows_of(side: clinc_split.Side, *names: str) -> list[tuple[str, str]]:
        return clinc_split.rows(side, *names, clinc=args.clinc)

    train_rows = rows_of("tuned", "train", "oos_train")
    val_rows = rows_of("tuned", "val", "oos_val")
    test_sides = {
        "tuned-on domains": rows_of("tuned", "test", "oos_test"),
        "held-out domains": rows_of("held_out", "test", "oos_test"),
    }
    encoder = Encoder(
        load_sentence_model(), cache_size=0, runtime=args.runtime, precision=args.precision
    )
    pack = load_pack(DEFAULT_PACK)
    ending = {name for name, spec in pack.intents.items() if spec.ends_call}
    head_file = head_path(DEFAULT_PACK)
    head = IntentHead.load(head_file) if head_file.exists() and not args.tune else None
    responder = QuickResponder.build(pack, encoder.encode_sync, head=head)
    print(
        f"# quick_responses: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"pack {pack.name} ({sum(len(i.examples) for i in pack.intents.values())} examples), "
        f"encoder {encoder.runtime} {encoder.precision}, "
        f"scorer {'head' if responder.head else 'nearest example'}; held out: "
        f"{', '.join(clinc_split.HELD_OUT_DOMAINS)} and half of small_talk, meta, oos"
    )
    thresholds = {name: spec.threshold for name, spec in pack.intents.items()}
    if args.tune:
        train_vectors = encoder.encode_sync([t for t, _ in train_rows])
        val_vectors = encoder.encode_sync([t for t, _ in val_rows])
        strict = dict.fromkeys(ending, args.strict_floor)
        best: tuple[float, float, int, dict[str, float], IntentHead] | None = None
        print(
            "\n| C | unknown words allowed | recall (val) | false fires (val) |\n|---|---|---|---|"
        )
        for strength in (1.0, 4.0, 16.0):
            candidate_head = train_head(responder, train_rows, train_vectors, strength)
            responder.head = candidate_head
            for allowed in (0, 1, 2):
                responder.max_unknown = allowed
                scored = score_all(responder, val_rows, val_vectors)
                # A probability of 0.5 is more likely than everything else together.
                tuned = tune(scored, list(pack.intents), args.target_ff, floor=0.5, strict=strict)
                recall, false_rate = rates(scored, tuned)
                print(f"| {strength:g} | {allowed} | {recall:.1%} | {false_rate:.2%} |")
                if false_rate <= args.target_ff and (best is None or recall > best[0]):
                    best = (recall, strength, allowed, tuned, candidate_head)
        assert best is not None, "no setting met the false-fire budget on val"
        _, strength, responder.max_unknown, tuned, responder.head = best
        responder.head.save(head_file)
        thresholds.update(tuned)
        out = {
            "scorer": "head",
            "margin": pack.margin,
            "max_unknown_words": responder.max_unknown,
            **{k: tuned[k] for k in sorted(tuned)},
        }
        header = (
            "# Written by bench/quick_responses.py --tune: probability thresholds of the intent\n"
            f"# head ({head_file.name}), tuned on the tuning side of CLINC150 val "
            "(bench/clinc_split.py)\n"
            f"# with a false-fire budget of {args.target_ff:.2%}; templates that end the call at "
            f"{args.strict_floor} or more, with none.\n# Do not edit by hand.\n"
        )
        thresholds_path(DEFAULT_PACK).write_text(header + yaml.safe_dump(out, sort_keys=False))
        print(f"chose C={strength:g}, {responder.max_unknown} unknown words; thresholds {tuned}")
    scored_sides = {
        name: score_all(responder, rows, encoder.encode_sync([t for t, _ in rows]))
        for name, rows in test_sides.items()
    }
    summary(scored_sides, thresholds, ending)
    for name, scored in scored_sides.items():
        report(scored, thresholds, f"CLINC150 test + oos_test, {name}")
    latency(responder, encoder, test_sides["held-out domains"])


if __name__ == "__main__":
    main()
