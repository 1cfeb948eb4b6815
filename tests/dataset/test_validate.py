import json

from tests.conftest import run_persona


def _jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_problems_are_reported_one_per_line_with_file_and_line(tmp_path):
    path = _jsonl(tmp_path / "d.jsonl", [
        {"prompt": "S\n\nHuman: q\n\nAda:", "completion": " fine"},
        "{not json",
        {"prompt": "p"},
        {"prompt": "p", "completion": "   "},
        {"prompt": "S\n\nHuman: q\n\nAda:", "completion": " fine"},
        {"something": "else"},
        {"messages": [{"role": "user", "content": "q"}]},
        [1, 2],
    ])
    result = run_persona("data", "validate", str(path))
    assert result.returncode == 2
    lines = result.stdout.strip().splitlines()
    assert lines == [
        f"{path}:2: invalid JSON (Expecting property name enclosed in double quotes at column 2)",
        f"{path}:3: missing field 'completion'",
        f"{path}:4: empty completion",
        f"{path}:5: duplicate of line 1",
        f"{path}:6: missing fields: needs 'prompt' and 'completion', or 'messages'",
        f"{path}:7: the last message must be the assistant's answer",
        f"{path}:8: expected a JSON object, got list",
        "7 problem(s) in 8 record(s)",
    ]


def test_original_pipeline_files_and_messages_only_files_are_accepted(tmp_path):
    original = _jsonl(tmp_path / "orig.jsonl", [{"prompt": "S\n\nHuman: q\n\nAda:", "completion": " a"},
                                                  {"prompt": "S\n\nHuman: r\n\nAda:", "completion": " b"}])
    chat = _jsonl(tmp_path / "chat.jsonl", [{"messages": [{"role": "system", "content": "S"},
                                                          {"role": "user", "content": "q"},
                                                          {"role": "assistant", "content": "a"}]}])
    for path in (original, chat):
        result = run_persona("data", "validate", str(path))
        assert result.returncode == 0, result.stdout
        assert result.stdout.startswith("ok: ")


def _tiny_tokenizer(folder):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "</s>": 1}
    for word in "s human q ada a b c d e f : fine".split():
        vocab.setdefault(word, len(vocab))
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", eos_token="</s>").save_pretrained(folder)
    return folder


def test_samples_longer_than_max_length_are_flagged_with_a_real_tokenizer(tmp_path):
    tokenizer = _tiny_tokenizer(tmp_path / "tok")
    path = _jsonl(tmp_path / "d.jsonl", [{"prompt": "S Human: q Ada:", "completion": " a b"},
                                         {"prompt": "S Human: q Ada:", "completion": " a b c d e f"}])
    # line 1: s human : q ada : a b = 8 tokens + EOS = 9; line 2: 12 + EOS = 13
    result = run_persona("data", "validate", str(path), "--max-length", "10", "--model", str(tokenizer))
    assert result.returncode == 2
    assert result.stdout.strip().splitlines() == [
        f"{path}:2: 13 tokens > max_length 10; the completion would be cut", "1 problem(s) in 2 record(s)"]
    assert run_persona("data", "validate", str(path), "--max-length", "13", "--model", str(tokenizer)).returncode == 0


def test_max_length_needs_a_model(tmp_path):
    path = _jsonl(tmp_path / "d.jsonl", [{"prompt": "p", "completion": " c"}])
    result = run_persona("data", "validate", str(path), "--max-length", "10")
    assert result.returncode == 2 and "--max-length needs --model" in result.stderr
    result = run_persona("data", "validate", str(path), "--max-length", "10", "--model", str(tmp_path / "none"))
    assert result.returncode == 2 and "cannot load its tokenizer" in result.stderr
    assert "Traceback" not in result.stderr
