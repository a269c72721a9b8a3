"""The loyalty tests use the members and catalog builders, and the orders' small chain."""

from tests.catalog.conftest import catalog  # noqa: F401
from tests.members.conftest import cipher, make_member  # noqa: F401
from tests.orders.conftest import chain, stock  # noqa: F401
