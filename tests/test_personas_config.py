from pathlib import Path

import pytest

from personaforge.config import DataConfig, apply_overrides, load_data_config, validate_config
from personaforge.errors import PersonaForgeError
from personaforge.personas import Roster, load_cards


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_cards_load_from_one_file_or_a_folder(tmp_path):
    _write(tmp_path, "a.yaml", "name: Ada Bell\naliases: [Ada, AB]\ntopics: lighthouses\n")
    _write(tmp_path, "b.yml", "personas:\n  - name: Ben\n  - name: Quinn\n    role: interviewer\n")
    roster = Roster(load_cards([tmp_path]))
    assert [c.name for c in roster.personas] == ["Ada Bell", "Ben"]
    assert roster.card_for("  ada ").name == "Ada Bell"
    assert roster.card_for("ADA BELL").name == "Ada Bell"
    assert roster.card_for("quinn").role == "interviewer"
    assert roster.card_for("nobody") is None
    assert roster.personas[0].topics == ["lighthouses"]


def test_default_system_prompt_comes_from_description_and_style(tmp_path):
    path = _write(tmp_path, "a.yaml", "name: Ada\ndescription: A keeper.\nspeaking_style: Brisk.\n")
    card = load_cards([path])[0].card
    assert card.prompt_text() == "You are Ada. A keeper. Speak in your own voice: Brisk."
    path.write_text("name: Ada\nsystem_prompt: |\n  Be Ada.\n  Always.\n", encoding="utf-8")
    assert load_cards([path])[0].card.prompt_text() == "Be Ada. Always."


def test_card_without_name_names_file_and_line(tmp_path):
    path = _write(tmp_path, "cards.yaml", "- name: Ada\n- aliases: [Ben]\n  topics: [bread]\n")
    with pytest.raises(PersonaForgeError, match=r"cards.yaml:2: persona card has no 'name'"):
        load_cards([path])


def test_alias_claimed_by_two_personas_names_both(tmp_path):
    _write(tmp_path, "a.yaml", "name: Ada\naliases: [Keeper]\n")
    _write(tmp_path, "b.yaml", "name: Ben\naliases: [keeper]\n")
    with pytest.raises(PersonaForgeError) as caught:
        load_cards([tmp_path])
    message = str(caught.value)
    assert "'keeper'" in message and "Ada" in message and "Ben" in message and "a.yaml" in message


def test_unknown_card_key_suggests_the_closest(tmp_path):
    path = _write(tmp_path, "a.yaml", "name: Ada\n\nspeaking_styl: brisk\n")
    with pytest.raises(PersonaForgeError, match=r"a.yaml:3: unknown key 'speaking_styl'; did you mean 'speaking_style'\?"):
        load_cards([path])


def test_bad_yaml_names_the_line(tmp_path):
    path = _write(tmp_path, "a.yaml", "name: Ada\naliases: [unclosed\n")
    with pytest.raises(PersonaForgeError, match=r"a.yaml:\d+: invalid YAML"):
        load_cards([path])


def test_cards_need_at_least_one_persona(tmp_path):
    path = _write(tmp_path, "a.yaml", "name: Quinn\nrole: interviewer\n")
    with pytest.raises(PersonaForgeError, match="role 'persona'"):
        load_cards([path])


def test_config_unknown_key_points_to_its_section(tmp_path):
    path = _write(tmp_path, "data.yaml", "seed: 1\nurl: http://x\n")
    with pytest.raises(PersonaForgeError, match=r"data.yaml:2: unknown key 'url'; 'url' belongs in section 'teacher'"):
        load_data_config(path)
    path.write_text("seed: 1\neval_fractoin: 0.2\n", encoding="utf-8")
    with pytest.raises(PersonaForgeError, match=r"did you mean 'eval_fraction'\?"):
        load_data_config(path)


def test_config_wrong_type_names_key_and_value(tmp_path):
    path = _write(tmp_path, "data.yaml", "seed: 1\neval_fraction: lots\n")
    with pytest.raises(PersonaForgeError, match=r"data.yaml:2: key 'eval_fraction'.*'lots'"):
        load_data_config(path)
    path.write_text("eval_fraction: 1.5\n", encoding="utf-8")
    with pytest.raises(PersonaForgeError, match="less than 1"):
        load_data_config(path)


def test_overrides_parse_yaml_scalars():
    data = apply_overrides({"teacher": {"url": "u", "model": "m"}}, ["seed=3", "teacher.timeout=2.5", "redact_others=true"])
    config = validate_config(DataConfig, data)
    assert (config.seed, config.teacher.timeout, config.redact_others) == (3, 2.5, True)
    with pytest.raises(PersonaForgeError, match="expected key=value"):
        apply_overrides({}, ["seed"])


def test_the_data_config_accepts_every_transcript_format_the_parsers_know():
    import typing

    from personaforge.config import DataConfig
    from personaforge.transcripts import FORMATS

    assert typing.get_args(DataConfig.model_fields["format"].annotation) == FORMATS
