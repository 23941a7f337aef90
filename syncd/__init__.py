"""syncd: two-way sync between marketing automation (HubSpot) and the CRM (Salesforce)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("syncd")
except PackageNotFoundError:  # run from a source tree that is not installed
    __version__ = "0+unknown"
