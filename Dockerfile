FROM python:3.11-slim
# The service runs as a user of its own, never root; it writes only under /app/var.
RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home lifecycle
WORKDIR /app
# As scripts/install.sh, but the runtime lock alone (no test tools): the locked dependencies,
# checked against their hashes (a layer of its own, kept while only the code changes), then the
# project alone; setuptools comes from the lock, so the build needs no isolated environment.
COPY requirements-runtime.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements-runtime.lock
COPY pyproject.toml ./
COPY lifecycle lifecycle
COPY api api
COPY workers workers
RUN pip install --no-cache-dir --no-deps --no-build-isolation . && pip check \
    && mkdir -p /app/var && chown lifecycle:lifecycle /app/var
USER lifecycle
EXPOSE 8000
CMD ["lifecycle", "serve", "--host", "0.0.0.0", "--port", "8000"]
