"""``python -m complaint_stream.workers.intake``: run the intake worker."""

import sys

from complaint_stream.settings import load_settings
from complaint_stream.workers import launch

sys.exit(launch("intake", load_settings()))
