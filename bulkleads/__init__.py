"""bulkleads: apply bulk updates to HubSpot records (Leads v1 and the CRM objects) from CSV, TSV,
JSON Lines or ``.xlsx`` files, without losing a row.

The package reads as its flow: ``input`` -> ``plan`` -> ``jobstore`` -> ``send`` -> ``report``,
wired by ``pipeline`` and driven by ``commands``; ``hubspot`` is the API below them all.
"""

from bulkleads.errors import BulkleadsError, InputError, InsecureURLError, JobError, UsageError
from bulkleads.token import Token

__version__ = "0.1.0"

__all__ = [
    "BulkleadsError",
    "InputError",
    "InsecureURLError",
    "JobError",
    "Token",
    "UsageError",
    "__version__",
]
