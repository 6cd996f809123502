import pytest

from crossmodal.checks import check


def test_a_claim_that_holds_prints_one_tick_line(capsys):
    check("the loss ends below the floor", 0.02 < 0.09, "0.02")
    assert capsys.readouterr().out == "✓ the loss ends below the floor\n"


def test_a_claim_that_fails_stops_with_what_was_measured(capsys):
    with pytest.raises(AssertionError, match=r"expected accuracy over 95%, but this run measured 91\.20%"):
        check("accuracy over 95%", 0.912 > 0.95, "91.20%")
    assert capsys.readouterr().out == ""  # no ✓ for a claim that does not hold
