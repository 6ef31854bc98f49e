# Image for the workers and the `complaints` CLI (used by docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY complaint_stream ./complaint_stream
COPY schemas ./schemas
COPY topics ./topics
COPY workers ./workers
COPY monitoring ./monitoring
COPY examples ./examples
# No compiler needed: the classifier's term matcher (ahocorasick-rs) is a prebuilt wheel.
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 complaints
USER complaints
ENV COMPLAINTS_STATE_DIR=/tmp/complaint-stream
ENTRYPOINT ["complaints"]
