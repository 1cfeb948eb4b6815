from tests.train.conftest import tiny_dataset, tiny_model  # noqa: F401 - shared session fixtures
