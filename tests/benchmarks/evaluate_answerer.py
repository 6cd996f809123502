"""Complete a trained question answerer's record: the held-out split, and the blind baseline beside it.

    python tests/benchmarks/evaluate_answerer.py runs/answerer --blind runs/answerer-blind

`python -m crossmodal.train --task questions` evaluates on the published seen test set after every epoch. This
adds, to FOLDER/training.json: "held_out", the exact answers (by kind) on the held-out split (data/questions.py
says what it holds out), and "blind_baseline", the blind model's own training.json (the same recipe with
--decoder.cross-attention-every 0) with its held-out result added too. The shipped answerer's record was
completed this way (notebook 08 and the README read it).
"""

import argparse
import json
from pathlib import Path

import torch

from crossmodal.nn.model import VisionLanguageModel
from crossmodal.tasks.questions import QuestionTest


def held_out(folder):
    return QuestionTest(split="held_out").evaluate(VisionLanguageModel.from_pretrained(folder))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folder", help="the trained answerer's checkpoint folder")
    p.add_argument("--blind", required=True, help="the blind baseline's checkpoint folder")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    path, blind_path = Path(args.folder) / "training.json", Path(args.blind) / "training.json"
    record, blind = json.loads(path.read_text()), json.loads(blind_path.read_text())
    blind_model = VisionLanguageModel.from_pretrained(args.blind)
    if blind_model.decoder.sees_image:
        raise SystemExit(f"error: {args.blind} is not blind: it has cross-attention layers")
    record["held_out"] = held_out(args.folder)
    blind["held_out"] = held_out(args.blind)
    record["blind_baseline"] = blind
    path.write_text(json.dumps(record, indent=2) + "\n")
    for name, r in (("answerer", record), ("blind", blind)):
        print(f"{name}: seen {r['test_exact_match']:.2%} {r['by_kind']}\n  held out {r['held_out']['exact_match']:.2%} "
              f"{r['held_out']['by_kind']}")


if __name__ == "__main__":
    main()
