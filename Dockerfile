FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml ./
COPY lifecycle lifecycle
COPY api api
COPY workers workers
RUN pip install --no-cache-dir .
EXPOSE 8000
CMD ["lifecycle", "serve", "--host", "0.0.0.0", "--port", "8000"]
