import pytest

from crossmodal.checks import check


def test_a_claim_that_holds_prints_one_tick_line(capsys):
    check("the loss ends below the floor", 0.02 < 0.09, "0.02")
    assert capsys.readouterr().out == "✓ the loss ends below the floor\n"


def test_a_claim_that_fails_stops_with_what_was_measured(capsys):
    with pytest.raises(AssertionError, match=r"expected accuracy over 95%, but this run measured 91\.20%"):
        check("accuracy over 95%", 0.912 > 0.95, "91.20%")
    assert capsys.readouterr().out == ""  # no ✓ for a claim that does not hold


def is_three(answer):
    assert answer(1) == 3, "not three"


def test_an_exercise_checks_its_solution_then_says_it_is_not_attempted(capsys):
    from crossmodal.checks import exercise

    def solution_three(x):
        return 3

    def mine(x):
        return None  # ← your code

    assert exercise("Exercise 1", is_three, mine, solution_three) is False
    assert capsys.readouterr().out == ("Exercise 1: not attempted yet — write your answer in place of `None` and run "
                                       "the cell again; `solution_three`, in the collapsed cell before it, shows one\n")
    assert exercise("Exercise 1", is_three, solution_three, solution_three) is True
    assert capsys.readouterr().out == "Exercise 1 ✓\n"
    with pytest.raises(AssertionError, match="not three"):  # a wrong attempt: the checker's hint
        exercise("Exercise 1", is_three, lambda x: 4, solution_three)
    with pytest.raises(AssertionError, match="not three"):  # a wrong solution stops the notebook, attempted or not
        exercise("Exercise 1", is_three, mine, lambda x: 2)


def test_a_value_exercise_is_not_attempted_while_it_is_none(capsys):
    from crossmodal.checks import exercise

    def truth(answer):
        assert answer is False, "look again"

    assert exercise("Exercise 2", truth, None, False) is False
    assert "not attempted yet" in capsys.readouterr().out
