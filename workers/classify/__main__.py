"""``python -m workers.classify``: run the classification worker."""

import sys

from complaint_stream.settings import load_settings
from workers import launch

sys.exit(launch("classify", load_settings()))
