"""Why "Is there a 7?" needs written working: train one question kind alone and watch it stay at chance, or not.

    python tests/benchmarks/question_plateau.py runs/answerer2 --bare --depth 2 --steps 500 --lr 5e-4
    python tests/benchmarks/question_plateau.py runs/answerer2 --depth 2 --steps 500 --lr 5e-4
    python tests/benchmarks/question_plateau.py runs/answerer2 --depth 4 --steps 1400 --lr 1e-3

A new answerer (tasks.questions.answerer_config with --depth decoder layers) is warm-started from a trained one
(training.warm_start: the blocks it has are copied, extra ones start fresh) and trained on one kind of question
(--kinds, default contains) with AdamW at a constant learning rate, batches of 64 numbers written from MNIST's
training digits. Every 100 steps it prints the training loss and the exact answers (conclusions, as
data.questions.final_answer grades them) on the first 700 questions of that kind in the published seen test set.
--bare trains the bare conclusion ("no") instead of the answer with its working ("2026 has 7: no").
Measured in issue #11 on a 2-core AVX2 CPU (see notebook 08, section 5).
"""

import argparse
import time

import torch
import torch.nn.functional as F

from crossmodal.data import load_mnist
from crossmodal.data.questions import KINDS, accuracy_by_kind, ask_each, final_answer, test_questions
from crossmodal.nn.model import VisionLanguageModel
from crossmodal.tasks.questions import QuestionBatches, answer_questions, answerer_config, chat_batch, new_answerer
from crossmodal.training.warm_start import warm_start


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("start", help="a trained answerer's folder to warm-start from")
    p.add_argument("--kinds", default="contains", help="comma-separated kinds to train on (default: contains)")
    p.add_argument("--depth", type=int, default=2, help="decoder layers of the new answerer (default: 2)")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--bare", action="store_true", help="train the bare conclusion, without the working")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    kinds = tuple(args.kinds.split(","))
    if set(kinds) - set(KINDS):
        p.error(f"--kinds must name some of {KINDS}")
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    print(f"{torch.backends.cpu.get_cpu_capability()} CPU, {args.threads} threads; {vars(args)}")

    config = answerer_config()
    config.decoder.depth = args.depth
    model = new_answerer(config)
    reused = warm_start(model, VisionLanguageModel.from_pretrained(args.start))
    print(f"warm start: {reused['copied']} tensors copied, {len(reused['skipped'])} left fresh")
    images, labels = load_mnist(train=True)
    stream = QuestionBatches(images, labels, model.tokenizer, kinds=kinds)
    test = test_questions("seen")
    picked = [i for i, q in enumerate(test.questions) if q.kind in kinds][:700]
    test_images = test.numbers.images[picked].float() / 255
    test_asked = [test.questions[i] for i in picked]
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)

    def evaluate():
        model.eval()
        answers = answer_questions(model, test_images, [q.text for q in test_asked])
        model.train()
        return {k: round(v, 3) for k, v in accuracy_by_kind(test_asked, answers).items()}

    print(f"step 0: {evaluate()}")
    step, epoch, start = 0, 0, time.perf_counter()
    while step < args.steps:
        for i in range(stream.steps_per_epoch(64)):
            x, texts, generator = stream.written(epoch, i, 64, seed=5)
            questions = ask_each(texts, generator, kinds=kinds)
            if args.bare:
                questions = [q._replace(answer=final_answer(q.answer)) for q in questions]
            tokens, targets = chat_batch(model.tokenizer, questions)
            logits = model(x, tokens[:, :-1])
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step += 1
            if step % 100 == 0:
                print(f"step {step}: loss {loss.item():.4f}, {evaluate()}, {time.perf_counter() - start:.0f} s")
            if step == args.steps:
                break
        epoch += 1


if __name__ == "__main__":
    main()
