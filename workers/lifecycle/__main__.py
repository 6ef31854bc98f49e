"""``python -m complaint_stream.workers.lifecycle``: run the lifecycle worker."""

import sys

from complaint_stream.settings import load_settings
from complaint_stream.workers.registry import WORKERS
from complaint_stream.workers.runtime import run_worker

sys.exit(run_worker(WORKERS["lifecycle"], load_settings()))
