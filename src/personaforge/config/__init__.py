"""Configs: the schema (config.schema), the original pipeline's flat configs mapped onto it (config.original), and
reading YAML with key=value overrides (config.load). Import names from here; the submodules say who owns what."""

from personaforge.config.load import (apply_overrides, load_data_config, load_train_config, override_eval_settings,
                                      parse_override)
from personaforge.config.schema import (DEFAULT_CONTRASTIVE_QUESTIONS, RECORD_TYPES, DataConfig, DataSection,
                                        EvalSection, LoraSection, ModelSection, OutputSection, RecordType, Section,
                                        TeacherConfig, TrainConfig, TrainSection, unknown_key_hint, validate_config)

__all__ = ["DEFAULT_CONTRASTIVE_QUESTIONS", "RECORD_TYPES", "DataConfig", "DataSection", "EvalSection", "LoraSection",
           "ModelSection", "OutputSection", "RecordType", "Section", "TeacherConfig", "TrainConfig", "TrainSection",
           "apply_overrides", "load_data_config", "load_train_config", "override_eval_settings", "parse_override",
           "unknown_key_hint", "validate_config"]
