# The LDE worker image: the same code as the embedded stack, pointed at real servers by settings.
# .dockerignore keeps the development tools (ops/devtools) and the tests out of the build context, so
# neither is copied nor installed.
FROM python:3.11-slim
WORKDIR /app
# CJK names in the PDF reports (the other scripts' fonts come with the Python packages).
RUN apt-get update && apt-get install -y --no-install-recommends fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY models ./models
COPY streams ./streams
COPY sinks ./sinks
COPY ops ./ops
RUN pip install --no-cache-dir .
ENV LDE_MODE=production LDE_WEB_HOST=0.0.0.0 LDE_DATA_DIR=/var/lib/lde
EXPOSE 6066
CMD ["lde", "up"]
