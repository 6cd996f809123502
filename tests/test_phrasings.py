"""The paraphrase grammar and its split (data/phrasings.py): every kind in every split, answers exactly those of
data/questions.py, the picture form never names the number and the text form always does, the same seed gives the
same questions, the test sets of the three splits pair up, and the corpus never holds a held-out template."""

import hashlib
import re
from collections import Counter

import pytest
import torch

from crossmodal.data import facts
from crossmodal.data.phrasings import (
    FORMS,
    PROTECTED,
    SPLITS,
    TEMPLATES,
    Phrased,
    _typo,
    ask,
    ask_each,
    corpus,
    draw_question,
    random_number,
    split_of,
    templates,
    text_questions,
    texts_of,
)
from crossmodal.data.phrasings import test_phrasings as phrasing_test_set  # not a test: pytest would collect it
from crossmodal.data.questions import KINDS, ORDINALS, answer, final_answer

SLOTS = {"position": {"number", "ordinal"}, "contains": {"number", "digit"}}


def many(split=("picture", "text", "held_out"), count=1400, seed=0):
    return text_questions(count, torch.Generator().manual_seed(seed), split)


def test_every_kind_has_templates_in_every_split():
    assert tuple(TEMPLATES) == KINDS
    for kind in KINDS:
        counts = Counter(split_of(k) for k in range(len(TEMPLATES[kind])))
        assert counts == {"picture": 6, "text": 3, "held_out": 3}, kind
        assert len(set(TEMPLATES[kind])) == len(TEMPLATES[kind])  # no template twice
        for split in SPLITS:
            assert all(split_of(k) == split for k, _ in templates(kind, split))


@pytest.mark.parametrize("kind", KINDS)
def test_templates_are_well_formed(kind):
    for template in TEMPLATES[kind]:
        assert set(re.findall(r"\{(\w+)\}", template)) == SLOTS.get(kind, {"number"}), template
        assert template.count("[") == template.count("]") <= 1 and template.count("(") == template.count(")")
        assert template[-1] in "?." and (template[0].isupper() or template[0] in "({"), template


def conclusion(q):
    """What a question's answer concludes, worked out here from its number and details."""
    if q.kind == "position":
        return q.number[-1] if q.ordinal == "last" else q.number[ORDINALS.index(q.ordinal)]
    if q.kind == "contains":
        return "yes" if q.digit in q.number else "no"
    return {"read": q.number, "count": str(len(q.number)), "largest": max(q.number), "backwards": q.number[::-1],
            "sum": str(sum(map(int, q.number)))}[q.kind]


def test_answers_are_exactly_those_of_the_questions_grammar():
    for q in many() + ask_each(["2026", "7", "4711", "90"] * 50, torch.Generator().manual_seed(1), SPLITS):
        assert isinstance(q, Phrased) and q.answer == answer(q.kind, q.number, q.ordinal, q.digit)
        assert final_answer(q.answer) == conclusion(q), q


def test_the_text_form_writes_the_number_and_the_picture_form_never_does():
    for q in many():
        assert q.form == "text" and re.search(rf"(?<!\d){q.number}(?!\d)", q.text), q.text
    numbers = ["2026", "4711", "938", "5550"] * 100
    for q in ask_each(numbers, torch.Generator().manual_seed(2), SPLITS, "picture"):
        assert q.form == "picture" and q.number not in q.text, q.text
        assert not re.search(r"[{}\[\]()|]", q.text), q.text  # every part of the grammar rendered


def test_the_details_are_there_to_be_read():
    for q in many():
        low = q.text.lower()
        if q.kind == "position":
            forms = {"first": "1st", "second": "2nd", "third": "3rd", "fourth": "4th", "last": "last"}
            assert q.ordinal in low or forms[q.ordinal] in low, q.text
        if q.kind == "contains":
            word = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"][int(q.digit)]
            assert re.search(rf"\b({q.digit}|{word})\b", re.sub(q.number, "", low, count=1)), q.text


def test_yes_and_no_equally_often_and_every_ordinal_asked():
    qs = many(count=4200)
    said = Counter(final_answer(q.answer) for q in qs if q.kind == "contains")
    assert abs(said["yes"] - said["no"]) < 0.2 * sum(said.values())
    asked = Counter(q.ordinal for q in qs if q.kind == "position")
    assert set(asked) == set(ORDINALS) | {"last"}


def test_the_styles_happen_at_their_rates():
    texts = [q.text for q in many(count=3000)]
    share = lambda test: sum(map(test, texts)) / len(texts)  # noqa: E731
    assert 0.03 < share(lambda t: "'s " in t and "What's" in t or "what's" in t or "WHAT'S" in t) < 0.5
    assert 0.2 < share(lambda t: any(p in t.lower() for p in ("please", "could you", "can you tell", "hey,",
                                                              "quick question", "thanks", "like to know"))) < 0.45
    assert 0.02 < share(lambda t: t.isupper()) < 0.1
    assert 0.1 < share(lambda t: t == t.lower()) < 0.3
    assert 0.1 < share(lambda t: t[-1] not in "?.!") < 0.35


def test_a_typo_is_one_small_edit_of_one_unprotected_word():
    g = torch.Generator().manual_seed(3)
    from crossmodal.data.numbers import Draws

    text = "What is the second digit of the number 2026? Is there a seven?"
    for _ in range(300):
        wrong = _typo(text, Draws(g))
        a, b = text.split(), wrong.split()
        changed = [(x, y) for x, y in zip(a, b) if x != y]
        assert len(a) == len(b) and len(changed) <= 1  # a swap of two equal letters changes nothing
        for x, y in changed:
            assert x.strip("?").lower() not in PROTECTED and not any(c.isdigit() for c in x)
            assert abs(len(x) - len(y)) == 1 or sorted(x) == sorted(y)


def test_the_same_seed_gives_the_same_questions_and_another_seed_others():
    assert many(count=300, seed=5) == many(count=300, seed=5)
    assert [q.text for q in many(count=300, seed=5)] != [q.text for q in many(count=300, seed=6)]
    g = torch.Generator().manual_seed(0)
    q = draw_question(g, "held_out")
    assert q == draw_question(torch.Generator().manual_seed(0), "held_out") and q.split == "held_out"
    # the bytes every machine must give (a published test set): the SHA-256 of the text test set of each split
    lines = {split: "\n".join(q.text + "\t" + q.answer for q in phrasing_test_set(split, "text").questions)
             for split in SPLITS}
    digests = {split: hashlib.sha256(text.encode()).hexdigest()[:16] for split, text in lines.items()}
    assert digests == EXPECTED_DIGESTS


EXPECTED_DIGESTS = {"picture": "2d5b96d94f256cee", "text": "c28dc5863e07112f", "held_out": "72d741cc0b1ab6a5"}


def test_text_numbers_have_one_to_four_digits_leading_zeros_included():
    from crossmodal.data.numbers import Draws

    g = torch.Generator().manual_seed(4)
    numbers = [random_number(Draws(g)) for _ in range(2000)]
    assert all(n.isdigit() and 1 <= len(n) <= 4 for n in numbers)
    assert set(map(len, numbers)) == {1, 2, 3, 4} and any(len(n) > 1 and n[0] == "0" for n in numbers)


@pytest.mark.parametrize("form", FORMS)
def test_the_test_sets_of_the_three_splits_pair_up(form, request):
    if form == "picture":
        request.getfixturevalue("mnist_test")  # the pictures are MNIST's: skipped without it, outside CI
    count = 700
    sets = {split: phrasing_test_set(split, form, count) for split in SPLITS}
    for split, (numbers, questions) in sets.items():
        assert len(questions) == count and Counter(q.kind for q in questions) == {k: 100 for k in KINDS}
        assert all(q.split == split and q.form == form for q in questions)
        assert (numbers is None) == (form == "text")
        if numbers is not None:
            assert [q.number for q in questions] == numbers.texts
    details = {split: [(q.kind, q.number, q.ordinal, q.digit, q.answer) for q in qs] for split, (_, qs) in sets.items()}
    assert details["picture"] == details["text"] == details["held_out"]
    assert len({q.text for q in sets["picture"].questions} & {q.text for q in sets["held_out"].questions}) < 20
    again = phrasing_test_set("text", form, count)
    again.questions.clear()  # the caller's own copy
    assert len(phrasing_test_set("text", form, count).questions) == count


def test_the_corpus_mixes_chats_of_the_trained_splits_with_facts():
    passages = corpus(2000, torch.Generator().manual_seed(7), fact_share=0.25, turns=2)
    assert passages == corpus(2000, torch.Generator().manual_seed(7), fact_share=0.25, turns=2)
    fact_list = [p for p in passages if isinstance(p, str)]
    chats = [p for p in passages if not isinstance(p, str)]
    assert 0.2 < len(fact_list) / len(passages) < 0.3
    assert set(fact_list) <= set(facts.all_facts()) - set(facts.held_out_facts())
    assert {len(c) for c in chats} == {2, 4}  # one or two turns
    for chat in chats:
        assert [m["role"] for m in chat] == ["user", "assistant"] * (len(chat) // 2)
    assert len(texts_of(passages)) == len(fact_list) + sum(map(len, chats))


def test_the_corpus_never_holds_a_held_out_template(monkeypatch):
    import crossmodal.data.phrasings as phrasings

    seen = []
    real = phrasings.ask
    monkeypatch.setattr(phrasings, "ask", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    corpus(1500, torch.Generator().manual_seed(8), fact_share=0.1)
    assert Counter(q.split for q in seen).keys() == {"picture", "text"} and all(q.form == "text" for q in seen)
    with pytest.raises(ValueError, match="held-out templates are in no training"):
        corpus(10, torch.Generator(), splits=("picture", "held_out"))


def test_mistakes_are_refused_with_a_sentence():
    from crossmodal.data.numbers import Draws

    draw = Draws(torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="split must be one of"):
        ask("12", "read", draw, "train")
    with pytest.raises(ValueError, match="form must be one of"):
        ask("12", "read", draw, "picture", "image")
    with pytest.raises(ValueError, match="kind must be one of"):
        ask("12", "colour", draw)
    with pytest.raises(ValueError, match="1 to 4 digits"):
        ask("12345", "read", draw)
    with pytest.raises(ValueError, match="pass it as number"):
        draw_question(torch.Generator(), form="picture")
    with pytest.raises(ValueError, match="split must be one of"):
        phrasing_test_set("seen")
