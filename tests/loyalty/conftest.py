"""The loyalty tests use the members builders."""

from tests.members.conftest import cipher, make_member  # noqa: F401
