"""The shipped question answerer (notebook 08): small, offline, as good as its record says, beside its blind baseline,
and looking where the question points."""

import pytest
import torch

from crossmodal.data.questions import KINDS, QuestionSet, accuracy_by_kind, asked_digit
from crossmodal.data.questions import test_questions as published_questions  # not collected as a test
from crossmodal.pretrained import load_answerer, record, shipped_dir
from crossmodal.tasks.questions import QuestionTest, answer_questions, answer_with_maps, position_alignment

ANSWERER_DIR = shipped_dir("answerer")

BARS = ("count", "position", "contains")  # issue #11's 97% bar, met; "read" (95.2%) is not: see the README


def answerer_record():
    return record("answerer")


def _recipe(command):
    """A training command without its --init-from/--warm-start and --out folders."""
    folders = ("--init-from", "--warm-start", "--out")
    words = command.split()
    return " ".join(w for i, w in enumerate(words) if w not in folders and words[i - 1] not in folders)


def _stages(record):
    """The training commands of a record's chain, first stage first (each stage started from the one before)."""
    commands = []
    while record:
        commands.insert(0, record["command"])
        record = record.get("init_from") or record.get("warm_start")
    return commands


@pytest.fixture(scope="module")
def answerer():
    torch.set_num_threads(2)
    return load_answerer()


@pytest.fixture(scope="module")
def first_700():
    """The first 700 seen test questions: 100 of each kind (the kinds are taken in turn)."""
    test = published_questions("seen")
    numbers = type(test.numbers)(test.numbers.images[:700], test.numbers.texts[:700], test.numbers.boxes[:700])
    return QuestionTest(QuestionSet(numbers, test.questions[:700]))


def test_shipped_files_are_small_and_the_record_tells_how_it_was_made():
    assert sum(f.stat().st_size for f in ANSWERER_DIR.iterdir()) <= 5 * 1024 * 1024
    record = answerer_record()
    assert record["command"].startswith("python -m crossmodal.train --task questions")
    seen, blind = _stages(record), _stages(record["blind_baseline"])  # commands
    assert any("--question-kinds contains " in command for command in seen)  # the stage that learnt "Is there a ..?"
    # the blind model: the same stages from the one before "contains" on, each without cross-attention
    shared = next(i for i, command in enumerate(seen) if "--question-kinds contains " in command)
    assert len(blind) == len(seen) and blind[:shared] == seen[:shared]
    for ours, theirs in zip(seen[shared:], blind[shared:]):
        if "--warm-start" in theirs:  # a new model is built: it must be built blind (--init-from keeps the model)
            assert " --decoder.cross-attention-every 0" in theirs
        assert _recipe(theirs).replace(" --decoder.cross-attention-every 0", "") == _recipe(ours)
    assert set(record["by_kind"]) == set(record["held_out"]["by_kind"]) == set(KINDS)
    assert set(record["blind_baseline"]["by_kind"]) == set(KINDS)


def test_the_record_meets_the_bars_and_beats_the_blind_model():
    record = answerer_record()
    for kind in BARS:
        assert record["by_kind"][kind] >= 0.97, (kind, record["by_kind"][kind])
    assert record["by_kind"]["read"] >= 0.95  # the reader it started from reads 96.1% of numbers
    assert record["by_kind"]["sum"] >= 0.8  # as a running total: 85.2% (written "2+0+2+6=10", it was 50.6%)
    blind = record["blind_baseline"]["by_kind"]
    for kind in ("read", "position", "backwards", "largest", "sum"):
        assert record["by_kind"][kind] > blind[kind] + 0.3, kind


def test_live_answers_agree_with_the_record(answerer, first_700):
    answers = answer_questions(answerer, first_700.numbers.images.float() / 255, [q.text for q in first_700.questions])
    live = accuracy_by_kind(first_700.questions, answers)
    record = answerer_record()
    # 100 questions a kind against the record's 1,000: within sampling error (a binomial sd is at most 5 points)
    for kind in KINDS:
        assert live[kind] >= record["by_kind"][kind] - 0.06, (kind, live[kind], record["by_kind"][kind])


def test_position_answers_look_at_the_asked_digit(answerer, first_700):
    aligned = position_alignment(answerer, first_700)
    assert aligned["count"] >= 90  # 100 position questions, nearly all answered right
    assert max(aligned["per_layer"]) >= 0.85, aligned["per_layer"]
    assert max(aligned["per_layer"]) > 3 * aligned["chance"]


def test_answer_with_maps_is_the_batched_answer_with_its_maps(answerer, first_700):
    images = first_700.numbers.images[:7].float() / 255
    questions = [q.text for q in first_700.questions[:7]]
    batched = answer_questions(answerer, images, questions)
    for image, question, expected in zip(images, questions, batched):
        reply = answer_with_maps(answerer, image, question)
        assert reply.text == expected
        assert reply.attention.shape == (len(expected), 4, 4, 4, 16)  # characters, layers, heads, grid
        assert torch.allclose(reply.attention.sum((-2, -1)), torch.ones(()))
    with pytest.raises(ValueError, match="one image"):
        answer_with_maps(answerer, images[:2], questions[0])


@pytest.mark.parametrize("number, question, index", [
    ("2026", "What is the first digit?", 0), ("2026", "Read the second digit.", 1),
    ("2026", "Which digit comes third?", 2), ("2026", "Tell me the fourth digit.", 3),
    ("123", "Which digit comes last?", 2), ("5", "What is the last digit?", 0),
])
def test_asked_digit(number, question, index):
    assert asked_digit(number, question) == index
