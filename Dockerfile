FROM python:3.11-slim
WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
RUN pip install --no-cache-dir --no-deps . && useradd --system carepath && install -d -o carepath /app/var
USER carepath
# An installed package has no checkout to keep its files in: beat's schedule goes here (the compose healthcheck reads it).
ENV LOG_FORMAT=json CAREPATH_DATA_DIR=/app/var
CMD ["carepath", "serve", "--host", "0.0.0.0"]
