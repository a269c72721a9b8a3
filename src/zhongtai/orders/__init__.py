"""Orders of every channel: checkout, pricing, payments, POS sales, returns and refunds.

Importing the package registers how orders follow a member through merges, exports and her
overview.
"""

from zhongtai.orders import membership as _membership  # noqa: F401  (merge/export/overview)
