"""bulkleads: apply bulk updates to HubSpot leads from CSV or JSONL files, without losing a row."""

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
