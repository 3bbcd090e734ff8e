"""Grading and scoring: what the community's checks count right, and the card's figures
(unit tests: no model)."""

from __future__ import annotations

from r1chat.core.events import Done
from r1chat.evals.benches import BENCHES, card_figure
from r1chat.evals.check import ask, chosen_letter, grade, same_answer
from r1chat.evals.data import Question
from r1chat.evals.scores import score
from r1chat.evals.store import Sample

MATH, GPQA = BENCHES["math500"], BENCHES["gpqa"]


def test_maths_answers_that_are_the_same_value_match() -> None:
    for got, want in [
        ("4", "4"),
        ("\\dfrac{1}{2}", "\\frac12"),  # math-verify reads \frac12
        ("0.5", "\\frac{1}{2}"),
        ("x = 7", "7"),
        ("1,000", "1000"),
        ("\\text{(B)}", "(B)"),
        ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}"),  # math-verify: symbolic
        ("90^\\circ", "90"),
    ]:
        assert same_answer(got, want), (got, want)
    for got, want in [("5", "4"), ("\\frac{1}{3}", "0.33"), ("-4", "4"), ("", "4")]:
        assert not same_answer(got, want), (got, want)


def done(content: str, finish: str = "stop", reasoning: str = "hm") -> Done:
    from r1chat.core.turn import extract_boxed

    return Done(reasoning, content, finish, boxed=extract_boxed(content))


def test_a_reply_is_right_wrong_or_counted_apart() -> None:
    q = Question("1", "2+2?", "4")
    asked = ask(MATH, q, seed=1)
    assert grade(q, asked, done("So $\\boxed{4}$.")).outcome == "right"
    assert grade(q, asked, done("First \\boxed{4}, no: \\boxed{5}")).outcome == "wrong"
    assert grade(q, asked, done("It is 4.")).outcome == "unread"
    assert grade(q, asked, done("", "length")).outcome == "unclosed"
    assert grade(q, asked, done("So \\boxed{4", "length")).outcome == "cut"
    assert grade(q, asked, done("\\boxed{4}", "error")).outcome == "failed"


def test_choices_are_shuffled_by_the_seed_and_graded_by_their_text() -> None:
    q = Question("g1", "Which?", "right one", ("w1", "w2", "w3"))
    orders = {ask(GPQA, q, seed).choices for seed in range(20)}
    assert len(orders) > 5 and ask(GPQA, q, 3) == ask(GPQA, q, 3)
    asked = ask(GPQA, q, 3)
    letter = "ABCD"[asked.choices.index("right one")]
    assert f"{letter}) right one" in asked.prompt and "Answer: $LETTER" in asked.prompt
    assert grade(q, asked, done(f"Reasoned.\n\nAnswer: {letter}")).outcome == "right"
    other = next(x for x in "ABCD" if x != letter)
    wrong = grade(q, asked, done(f"Answer: {letter}\nno wait\n**Answer: ({other})**"))
    assert wrong.outcome == "wrong" and wrong.answer == asked.choices["ABCD".index(other)]
    assert grade(q, asked, done("I cannot tell.")).outcome == "unread"


def test_the_letter_is_read_as_models_write_it() -> None:
    assert chosen_letter("Answer: C") == "C"
    assert chosen_letter("answer: $\\text{B}$") == "B"
    assert chosen_letter("**Answer:** (D)") == "D"
    assert chosen_letter("so \\boxed{A}") == "A"
    assert chosen_letter("Answer: none of them") is None


def sample(q: str, i: int, outcome: str, answer: str = "") -> Sample:
    return Sample(q, i, 0, outcome, answer, 10, 2, 0.1)


def test_pass_at_1_its_error_and_the_majority_vote() -> None:
    always = score([sample(q, i, "right", "4") for q in "ab" for i in range(4)])
    assert (always.pass1, always.stderr, always.cons) == (100.0, 0.0, 100.0)
    never = score([sample(q, 0, "wrong", "5") for q in "abc"])
    assert (never.pass1, never.cons) == (0.0, 0.0)
    half = score([sample(q, 0, "right" if q in "ab" else "wrong") for q in "abcd"])
    assert half.pass1 == 50.0 and round(half.stderr, 2) == 28.87  # sd 0.577 / sqrt(4)
    # one question, 3 of 4 samples right: pass@1 75; the majority answer is the right one
    mixed = [sample("a", 0, "right", "4"), sample("a", 1, "right", "4"),
             sample("a", 2, "wrong", "5"), sample("a", 3, "right", "4")]  # fmt: skip
    got = score(mixed)
    assert (got.pass1, got.cons, got.outcomes["wrong"]) == (75.0, 100.0, 1)
    outvoted = [
        sample("a", 0, "right", "4"),
        sample("a", 1, "wrong", "5"),
        sample("a", 2, "wrong", "5"),
    ]
    assert score(outvoted).cons == 0.0


def test_the_card_figure_is_found_by_any_of_the_models_names() -> None:
    assert card_figure(["DeepSeek-R1-Distill-Qwen-1.5B"], "math500") == (
        "R1-Distill-Qwen-1.5B",
        83.9,
    )
    assert card_figure(["", "DeepSeek-R1-Distill-Qwen-14B-Q4_K_M.gguf"], "aime24") == (
        "R1-Distill-Qwen-14B",
        69.7,
    )
    assert card_figure(["DeepSeek-R1-0528-Qwen3-8B"], "aime25") == ("R1-0528-Qwen3-8B", 76.3)
    assert card_figure(["deepseek-r1-distill-llama-8b"], "gpqa") == ("R1-Distill-Llama-8B", 49.0)
    assert card_figure(["Qwen2.5-7B-Instruct"], "math500") is None  # not a distill
    assert card_figure(["DeepSeek-R1-Distill-Qwen-7B"], "aime25") is None  # the card has none
