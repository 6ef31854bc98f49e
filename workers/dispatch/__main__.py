"""``python -m complaint_stream.workers.dispatch``: run the dispatch worker."""

import sys

from complaint_stream.settings import load_settings
from complaint_stream.workers.registry import WORKERS
from complaint_stream.workers.runtime import run_worker

sys.exit(run_worker(WORKERS["dispatch"], load_settings()))
