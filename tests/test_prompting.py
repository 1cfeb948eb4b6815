from personaforge.prompting import Exchange, chat_messages, plain_completion, plain_prompt, plain_stop_strings


def test_plain_prompt_is_the_original_pipeline_format():
    assert plain_prompt("You are Ada.", "Ada Bell", "Why lighthouses?") == (
        "You are Ada.\n\nHuman: Why lighthouses?\n\nAda Bell:"
    )
    assert plain_completion("Because of the ships. ") == " Because of the ships."


def test_history_goes_before_the_question_in_both_styles():
    history = [Exchange("First?", "One.")]
    assert plain_prompt("S", "Ada", "Second?", history) == "S\n\nHuman: First?\n\nAda: One.\n\nHuman: Second?\n\nAda:"
    assert chat_messages("S", "Second?", history, "Two.") == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "First?"},
        {"role": "assistant", "content": "One."},
        {"role": "user", "content": "Second?"},
        {"role": "assistant", "content": "Two."},
    ]


def test_stop_strings_cover_every_turn_marker():
    assert plain_stop_strings(["Ada", "Ben"]) == ["\n\nHuman:", "\n\nAda:", "\n\nBen:"]
