"""``python -m complaint_stream.workers.assign``: run the assign worker."""

import sys

from complaint_stream.settings import load_settings
from complaint_stream.workers.registry import WORKERS
from complaint_stream.workers.runtime import run_worker

sys.exit(run_worker(WORKERS["assign"], load_settings()))
