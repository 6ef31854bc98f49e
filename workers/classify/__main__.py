"""``python -m complaint_stream.workers.classify``: run the classification worker."""

import sys

from complaint_stream.settings import load_settings
from complaint_stream.workers import launch

sys.exit(launch("classify", load_settings()))
