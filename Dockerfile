# Image for the workers and the `complaints` CLI (used by docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY complaint_stream ./complaint_stream
COPY schemas ./schemas
COPY topics ./topics
COPY workers ./workers
COPY monitoring ./monitoring
COPY examples ./examples
# gcc builds the classifier's native scanner (complaint_stream/domain/classification/_scan.c)
# and is removed again; without it the package would fall back to the slower pure-Python matcher.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install --no-cache-dir . \
    && cd / && python -c "from complaint_stream.domain.classification import _scan" && cd /app \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 complaints
USER complaints
ENV COMPLAINTS_STATE_DIR=/tmp/complaint-stream
ENTRYPOINT ["complaints"]
