FROM python:3.11-slim
WORKDIR /app
# As scripts/install.sh: the locked dependencies, checked against their hashes (a layer of its
# own, kept while only the code changes), then the project alone; setuptools comes from the
# lock, so the build needs no isolated environment.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml ./
COPY lifecycle lifecycle
COPY api api
COPY workers workers
RUN pip install --no-cache-dir --no-deps --no-build-isolation . && pip check
EXPOSE 8000
CMD ["lifecycle", "serve", "--host", "0.0.0.0", "--port", "8000"]
