"""Write a small synthetic multi-label data set in emotionlib's CSV layout: customer-support tickets with 8 labels.

    python examples/synthetic_tickets.py --out examples/support-tickets
    python -m emotionlib report --config examples/support_tickets.yaml

Each ticket mentions one to three topics, each from its own phrase pool, in random order with filler words; the
`channel` column is metadata the profile declares as ignored. The labels are learnable by construction, so a
working pipeline scores far above chance and a broken one does not. Seeded: the same --seed writes the same files.
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

PHRASES = {
    "billing": [
        "I was charged twice this month",
        "the invoice amount is wrong",
        "my card was billed without consent",
        "why is there an extra fee on my bill",
        "the subscription price went up",
    ],
    "delivery": [
        "my parcel has not arrived",
        "the courier left the box at the wrong address",
        "tracking has not updated for a week",
        "the package came damaged",
        "delivery is late again",
    ],
    "refund": [
        "I want my money back",
        "please process a refund",
        "when will the refund reach my account",
        "return the payment for the cancelled order",
        "I am still waiting for the reimbursement",
    ],
    "login": [
        "I cannot log in",
        "the password reset email never comes",
        "my account is locked",
        "two-factor code is rejected",
        "the sign-in page keeps reloading",
    ],
    "bug": [
        "the app crashes when I open settings",
        "the button does nothing",
        "the page shows an error 500",
        "search returns blank results",
        "the screen freezes after the update",
    ],
    "praise": [
        "your support team was wonderful",
        "thanks for the quick help",
        "great service as always",
        "the new design looks lovely",
        "really happy with how this was handled",
    ],
    "complaint": [
        "this is unacceptable",
        "I am very disappointed",
        "worst experience I have had",
        "nobody answers my emails",
        "I have complained three times already",
    ],
    "feature_request": [
        "please add a dark mode",
        "it would be nice to export to PDF",
        "could you support Apple Pay",
        "I would like a weekly summary email",
        "add an option to pause my plan",
    ],
}
LABELS = list(PHRASES)
FILLER = ["hello", "hi team", "so", "also", "honestly", "by the way", "and", "again", "today", "please note"]
CHANNELS = ["email", "chat", "phone", "app"]


def ticket(rng: random.Random) -> tuple[str, list[int]]:
    chosen = rng.sample(LABELS, k=rng.choice([1, 1, 2, 2, 3]))
    parts = [rng.choice(PHRASES[lab]) for lab in chosen]
    words = " ".join(f"{rng.choice(FILLER)} {p}" if rng.random() < 0.5 else p for p in parts)
    return words[0].upper() + words[1:] + rng.choice([".", "!", "?", ""]), [int(lab in chosen) for lab in LABELS]


def write(path: Path, rows: int, rng: random.Random, start: int) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "text", "channel", *LABELS])
        for i in range(rows):
            text, y = ticket(rng)
            w.writerow([f"t{start + i:05d}", text, rng.choice(CHANNELS), *y])
    return path


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "support-tickets")
    p.add_argument("--train-rows", type=int, default=800)
    p.add_argument("--eval-rows", type=int, default=200, help="rows in dev.csv and in test.csv each")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    write(args.out / "train.csv", args.train_rows, rng, 0)
    write(args.out / "dev.csv", args.eval_rows, rng, args.train_rows)
    write(args.out / "test.csv", args.eval_rows, rng, args.train_rows + args.eval_rows)
    print(args.out)
    return args.out


if __name__ == "__main__":
    main()
