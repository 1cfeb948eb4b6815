"""Which recorded generation settings make two evaluations comparable."""

from personaforge.evaluate.decoding import describe, effective_decoding

GREEDY = {"max_new_tokens": 128, "temperature": 0.0, "top_p": 1.0, "batch_size": 32, "seed": 0,
          "repetition_penalty": 1.0, "repetition_penalty_scope": "answer", "end_rule": "likelier_than_not"}


def test_settings_that_cannot_change_the_answers_are_left_out():
    assert effective_decoding(GREEDY) == {"max_new_tokens": 128, "temperature": 0.0, "repetition_penalty": 1.0,
                                          "end_rule": "likelier_than_not"}
    sampled = effective_decoding({**GREEDY, "temperature": 0.7, "top_p": 0.9, "seed": 3})
    assert sampled["seed"] == 3 and sampled["top_p"] == 0.9 and "end_rule" not in sampled
    assert effective_decoding({**GREEDY, "repetition_penalty": 1.2})["repetition_penalty_scope"] == "answer"


def test_results_saved_before_a_setting_existed_get_what_generate_did_then():
    old = {"max_new_tokens": 96, "temperature": 0.0, "top_p": 1.0, "batch_size": 8, "seed": 0}
    assert effective_decoding(old) == {"max_new_tokens": 96, "temperature": 0.0, "repetition_penalty": 1.0,
                                       "end_rule": "argmax"}
    penalised = effective_decoding({**old, "repetition_penalty": 1.2})
    assert penalised["repetition_penalty_scope"] == "prompt_and_answer"


def test_describe_names_the_decoding_in_a_heading():
    assert describe(GREEDY) == "greedy, ends likelier_than_not, 128 tokens"
    assert describe({**GREEDY, "temperature": 0.7, "top_p": 0.9, "seed": 3, "repetition_penalty": 1.1,
                     "repetition_penalty_scope": "prompt_and_answer"}) == \
        "sampled (temperature 0.7, top_p 0.9, seed 3), penalty 1.1 on prompt and answer, 128 tokens"
    assert describe(None) == "decoding unknown"
