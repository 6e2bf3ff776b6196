"""A local server that behaves like HubSpot's Leads v1 API: rules, rate limits and faults.

HubSpot retired Leads v1, and nobody should rehearse a migration on a production portal, so
bulkleads brings its own. It needs the ``sandbox`` extra (starlette and uvicorn).
"""

SANDBOX_TOKEN = "sandbox-token"  # noqa: S105 - the sandbox's own well-known credential
