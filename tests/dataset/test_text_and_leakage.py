from hypothesis import given, settings
from hypothesis import strategies as st

from personaforge.dataset.leakage import find_leaks
from personaforge.dataset.text import chunk_text, sentences, word_count


def _sentence(i: int, n: int) -> str:
    return " ".join(f"w{i}x{j}" for j in range(n)).capitalize() + "."


def test_chunks_stay_within_bounds_and_keep_every_word():
    text = " ".join(_sentence(i, 7 + (i * 5) % 23) for i in range(60))
    chunks = chunk_text(text, 40, 120)
    assert len(chunks) > 5
    assert all(40 <= word_count(c) <= 120 for c in chunks[:-1])
    assert word_count(chunks[-1]) <= 120 + 20
    assert " ".join(chunks).split() == text.split()


def test_an_overlong_sentence_is_split_rather_than_kept_whole():
    text = " ".join(f"w{j}," if j % 30 == 29 else f"w{j}" for j in range(300)) + "."
    chunks = chunk_text(text, 40, 120)
    assert all(word_count(c) <= 120 for c in chunks)


def test_sentences_split_on_end_punctuation_and_keep_quotes():
    assert sentences("He said “Stop.” Then we left. Why? Because.") == ["He said “Stop.”", "Then we left.", "Why?", "Because."]


def test_leak_finds_the_longest_shared_run_and_names_both_records():
    leaks = find_leaks([("e1", "the quick brown fox jumps over the lazy dog today"), ("e2", "nothing in common")],
                       [("t1", "I saw the quick brown fox"), ("t2", "a fox jumps over the lazy dog, they said")])
    assert (leaks[0].eval_id, leaks[0].train_id, leaks[0].length) == ("e1", "t2", 6)
    assert leaks[0].text == "fox jumps over the lazy dog"


def test_matches_never_run_across_record_boundaries():
    leaks = find_leaks([("e1", "alpha beta"), ("e2", "gamma delta")], [("t", "beta gamma")])
    assert max(leak.length for leak in leaks) == 1


def _brute_longest(a: list[str], b: list[str]) -> int:
    best = 0
    for i in range(len(a)):
        for j in range(len(b)):
            k = 0
            while i + k < len(a) and j + k < len(b) and a[i + k] == b[j + k]:
                k += 1
            best = max(best, k)
    return best


words = st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=25)


@settings(max_examples=150, deadline=None)
@given(st.lists(words, min_size=1, max_size=4), st.lists(words, min_size=1, max_size=4))
def test_leak_lengths_agree_with_brute_force(evals, trains):
    leaks = find_leaks([(f"e{i}", " ".join(w)) for i, w in enumerate(evals)],
                       [(f"t{i}", " ".join(w)) for i, w in enumerate(trains)])
    expected = max(_brute_longest(e, t) for e in evals for t in trains)
    assert max((leak.length for leak in leaks), default=0) == expected
    for leak in leaks:  # every reported run really occurs in both named records
        e = evals[int(leak.eval_id[1:])]
        t = trains[int(leak.train_id[1:])]
        assert leak.text in " ".join(e) and leak.text in " ".join(t)
        assert leak.length <= _brute_longest(e, t)
