"""Questions about numbers (data/questions.py, tasks/questions.py): exact answers, balanced kinds and yes/no, and
splits that hold out what they say they hold out."""

from collections import Counter

import pytest
import torch

from crossmodal.data.numbers import Draws
from crossmodal.data.questions import (
    BLOCK_SIZE,
    HELD_OUT_PHRASING,
    KINDS,
    PHRASINGS,
    answer,
    ask,
    ask_each,
    final_answer,
    vocabulary,
)


def many_numbers(count, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 5, (count,), generator=g).tolist()
    return ["".join(str(d) for d in torch.randint(0, 10, (n,), generator=g).tolist()) for n in lengths]


@pytest.mark.parametrize("kind, number, detail, expected", [
    ("read", "2026", {}, "2026"), ("count", "2026", {}, "4"), ("count", "7", {}, "1"),
    ("position", "2026", {"ordinal": "second"}, "0"), ("position", "2026", {"ordinal": "last"}, "6"),
    ("position", "5", {"ordinal": "first"}, "5"), ("contains", "2026", {"digit": "7"}, "2026 has 7: no"),
    ("contains", "2026", {"digit": "2"}, "2026 has 2: yes"), ("largest", "2026", {}, "6"),
    ("sum", "2026", {}, "2+0=2, 2+2=4, 4+6=10"), ("sum", "99", {}, "9+9=18"),
    ("sum", "9999", {}, "9+9=18, 18+9=27, 27+9=36"), ("sum", "4", {}, "4=4"),
    ("backwards", "2026", {}, "6202"), ("backwards", "0", {}, "0"),
])
def test_answers_are_exact(kind, number, detail, expected):
    assert answer(kind, number, **detail) == expected


def test_kinds_are_balanced_and_repeat_with_the_seed():
    numbers = many_numbers(700)
    questions = ask_each(numbers, torch.Generator().manual_seed(1))
    assert Counter(q.kind for q in questions) == {kind: 100 for kind in KINDS}
    assert questions == ask_each(numbers, torch.Generator().manual_seed(1))
    assert questions != ask_each(numbers, torch.Generator().manual_seed(2))


def test_yes_and_no_equally_often():
    questions = ask_each(many_numbers(2000), torch.Generator().manual_seed(3), kinds=("contains",))
    share = sum(final_answer(q.answer) == "yes" for q in questions) / len(questions)
    assert 0.45 < share < 0.55, share


def test_each_answer_is_what_the_question_asks():
    numbers = many_numbers(1400, seed=4)
    for number, q in zip(numbers, ask_each(numbers, torch.Generator().manual_seed(4))):
        if q.kind == "position":
            ordinal = next(o for o in ("first", "second", "third", "fourth", "last") if o in q.text)
            assert q.answer == answer("position", number, ordinal=ordinal)
            assert ordinal == "last" or ["first", "second", "third", "fourth"].index(ordinal) < len(number)
        elif q.kind == "contains":
            digit = next(c for c in q.text if c.isdigit())
            assert q.answer == f"{number} has {digit}: " + ("yes" if digit in number else "no")
        else:
            assert q.answer == answer(q.kind, number)


def test_training_never_sees_what_is_held_out():
    numbers = many_numbers(3500, seed=5)
    held_out_texts = {p for ps in PHRASINGS.values() for p in [ps[HELD_OUT_PHRASING]]}
    for split in ("train", "seen"):
        for number, q in zip(numbers, ask_each(numbers, torch.Generator().manual_seed(5), split)):
            template = next(p for p in PHRASINGS[q.kind] if _fits(p, q.text))
            assert template not in held_out_texts, q
            assert not (q.kind == "position" and len(number) == 3 and "third" in q.text), (number, q)


def test_the_held_out_split_asks_only_what_is_held_out():
    numbers = many_numbers(3500, seed=6)
    thirds = 0
    for number, q in zip(numbers, ask_each(numbers, torch.Generator().manual_seed(6), "held_out")):
        template = next(p for p in PHRASINGS[q.kind] if _fits(p, q.text))
        if q.kind == "position" and len(number) == 3:
            assert "third" in q.text and template != PHRASINGS["position"][HELD_OUT_PHRASING]
            assert q.answer == number[2]
            thirds += 1
        else:
            assert template == PHRASINGS[q.kind][HELD_OUT_PHRASING], q
    assert thirds > 50


def test_vocabulary_covers_every_question_and_answer():
    numbers = many_numbers(1400, seed=7)
    known = set(vocabulary())
    for split in ("train", "held_out"):
        for q in ask_each(numbers, torch.Generator().manual_seed(7), split):
            assert set(q.text + q.answer) <= known, q


@pytest.mark.parametrize("number, kind, split, message", [
    ("12345", "read", "train", "1 to 4 digits"), ("", "read", "train", "1 to 4 digits"),
    ("12a", "read", "train", "1 to 4 digits"), (1234, "read", "train", "1 to 4 digits"),
    ("12", "colour", "train", "kind must be one of"), ("12", "read", "test", "split must be one of"),
])
def test_bad_requests_are_refused(number, kind, split, message):
    with pytest.raises(ValueError, match=message):
        ask(number, kind, Draws(torch.Generator().manual_seed(0)), split)


def _fits(template, text):
    """Whether `text` is `template` with its {ordinal} or {digit} filled in."""
    head, _, tail = template.partition("{")
    tail = tail.partition("}")[2] if _ else ""
    return text == template if not _ else text.startswith(head) and text.endswith(tail)


def tiny_answerer(seed=0):
    from crossmodal.nn.config import DecoderConfig, VisionConfig, VLMConfig
    from crossmodal.tasks.questions import new_answerer

    torch.manual_seed(seed)
    config = VLMConfig(VisionConfig(image_size=(28, 112), patch_size=7, dim=32, depth=1, num_heads=2),
                             DecoderConfig(dim=32, depth=2, num_heads=2, block_size=BLOCK_SIZE))
    return new_answerer(config).eval()


def test_chat_batch_counts_the_answers_only():
    from crossmodal.data.questions import Question
    from crossmodal.nn import IGNORE_INDEX
    from crossmodal.tasks.questions import chat_batch

    model = tiny_answerer()
    questions = [Question("sum", "Add up the digits.", "12"), Question("count", "How long is the number?", "3")]
    tokens, targets = chat_batch(model.tokenizer, questions)
    assert tokens.shape[1] - 1 == targets.shape[1]
    for row, q in zip(targets, questions):
        learnt = row[row != IGNORE_INDEX].tolist()
        assert model.tokenizer.convert_ids_to_tokens(learnt) == [*q.answer, "<eos>"]
    first = model.tokenizer.convert_ids_to_tokens(tokens[0].tolist())
    assert first[:2] == ["<bos>", "<|user|>"] and first[first.index("<|assistant|>") + 1 :][:3] == ["1", "2", "<eos>"]


def test_question_stream_trains_on_answers_only(mnist_train):
    from crossmodal.nn import IGNORE_INDEX
    from crossmodal.tasks.questions import QuestionBatches
    from crossmodal.training import TrainConfig, train

    model = tiny_answerer()
    stream = QuestionBatches(*mnist_train, model.tokenizer, strings_per_epoch=32, augment=True)
    images, tokens, targets, keep = next(stream.batches(0, 16, seed=0))
    assert images.shape == (16, 1, 28, 112) and tokens.shape == targets.shape and tokens.shape[0] == 16
    assert keep is None
    answers = (targets != IGNORE_INDEX).sum(1)
    assert (answers >= 2).all() and (answers <= 16).all()  # 1 to 15 characters ("1767 has 7: yes"), and <eos>
    history = train(model, TrainConfig(epochs=1, batch_size=16, warmup_steps=1), stream)
    assert len(history["loss"]) == 2 and all(loss == loss for loss in history["loss"])  # finite, not NaN


def test_batched_answers_equal_one_at_a_time(mnist_test):
    from crossmodal.data.numbers import make_numbers
    from crossmodal.tasks.questions import answer_questions

    model = tiny_answerer(seed=1)
    with torch.no_grad():  # a random model that writes answers of several lengths rather than <eos> at once
        model.decoder.lm_head.weight.mul_(20)
    numbers = make_numbers(*mnist_test, 6, torch.Generator().manual_seed(0))
    questions = ["Read the number.", "Is there a 7?", "What is the sum of the digits?", "Count the digits.",
                 "Which digit comes last?", "Read it from right to left."]  # prompts of different lengths
    batched = answer_questions(model, numbers.images.float() / 255, questions)
    single = [answer_questions(model, numbers.images[i : i + 1].float() / 255, questions[i : i + 1])[0]
              for i in range(6)]
    assert batched == single
    assert len({len(a) for a in batched}) > 1  # the check means something: the answers differ in length


@pytest.mark.parametrize("question, message", [
    ("", "empty"), ("Is it a zero?", "not in the vocabulary"), ("Read " * 12, "reads at most"),
    ("<eos>", "control token"),
])
def test_bad_questions_are_refused(question, message):
    with pytest.raises(ValueError, match=message) as refused:
        tiny_answerer().prompt_ids(question)
    assert "|user|" not in str(refused.value)  # the known characters it lists are characters, not role tokens


@pytest.mark.parametrize("text, conclusion", [
    ("2026 has 7: no", "no"), ("1767 has 7: yes", "yes"), ("2+0=2, 2+2=4, 4+6=10", "10"), ("4=4", "4"),
    ("6202", "6202"),
    ("", ""), ("9+9=", ""),  # a model's unfinished answer concludes nothing, and is graded wrong
])
def test_final_answer_is_the_conclusion(text, conclusion):
    assert final_answer(text) == conclusion


def test_the_longest_question_and_answer_fit_the_block():
    from crossmodal.data.questions import ORDINALS, PHRASINGS, answer

    longest_question = max(len(p.format(ordinal=o, digit="7")) for ps in PHRASINGS.values() for p in ps
                           for o in ORDINALS + ["last"])
    longest_answer = max(len(answer(kind, "9999", "last", "7")) for kind in PHRASINGS)
    assert 2 + longest_question + 1 + longest_answer + 1 <= BLOCK_SIZE  # <bos><|user|> q <|assistant|> a <eos>


def test_accuracy_by_kind_grades_the_conclusion():
    from crossmodal.data.questions import Question, accuracy_by_kind

    questions = [Question("sum", "Sum the digits.", "1+2=3"), Question("sum", "Sum the digits.", "1+3=4"),
                 Question("read", "Read the number.", "12"), Question("contains", "Is there a 1?", "12 has 1: yes")]
    answers = ["1+2=3", "1+3=5", "12", "17 has 1: yes"]  # a misread that keeps the conclusion right counts
    assert accuracy_by_kind(questions, answers) == {"read": 1.0, "contains": 1.0, "sum": 0.5, "all": 3 / 4}


def test_training_mix_of_kinds():
    from crossmodal.tasks.questions import QuestionBatches, QuestionOptions

    assert QuestionOptions(question_kinds="contains, contains,sum").kinds() == ("contains", "contains", "sum")
    assert QuestionOptions().kinds() == KINDS
    with pytest.raises(ValueError, match="--question-kinds must be a comma-separated list of read"):
        QuestionOptions(question_kinds="contains,colour").check()
    with pytest.raises(ValueError, match="kinds must name some of"):
        QuestionBatches(torch.zeros(1, 1, 28, 28), torch.zeros(1), None, kinds=("colour",))
    questions = ask_each(many_numbers(90), torch.Generator().manual_seed(0), kinds=("contains", "contains", "sum"))
    assert Counter(q.kind for q in questions) == {"contains": 60, "sum": 30}


def test_train_cli_task_questions_trains_an_answerer(tmp_path, monkeypatch, mnist_train, mnist_test):
    import json

    from crossmodal import VisionLanguageModel
    from crossmodal import train as train_cli
    from crossmodal.data.numbers import make_numbers
    from crossmodal.data.questions import QuestionSet
    from crossmodal.tasks import questions as questions_task
    from crossmodal.tasks.questions import QuestionBatches, answer_questions

    numbers = make_numbers(*mnist_test, 14, torch.Generator().manual_seed(4))
    small_test = QuestionSet(numbers, ask_each(numbers.texts, torch.Generator().manual_seed(0), "seen"))
    monkeypatch.setattr(questions_task, "load_mnist", lambda train: mnist_train if train else mnist_test)
    monkeypatch.setattr(questions_task, "QuestionBatches",
                        lambda *a, **kw: QuestionBatches(*a, **kw, strings_per_epoch=32))
    monkeypatch.setattr(questions_task, "test_questions", lambda split="seen": small_test)  # QuestionTest()'s set
    train_cli.main(["--task", "questions", "--epochs", "1", "--batch-size", "16", "--out", str(tmp_path),
                    "--vision.dim", "16", "--vision.depth", "1", "--decoder.dim", "16", "--decoder.depth", "1"])
    model = VisionLanguageModel.from_pretrained(tmp_path)
    assert model.tokenizer.chat_template  # the chat template was saved
    assert model.config.decoder.block_size == BLOCK_SIZE
    record = json.loads((tmp_path / "training.json").read_text())
    assert 0 <= record["test_exact_match"] <= 1 and set(record["by_kind"]) == set(KINDS)
    answers = answer_questions(model, numbers.images[:2].float() / 255, ["Read the number.", "Sum the digits."])
    assert len(answers) == 2
