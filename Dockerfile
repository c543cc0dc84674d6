FROM python:3.11-slim
WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
RUN pip install --no-cache-dir --no-deps . && useradd --system carepath
USER carepath
ENV LOG_FORMAT=json
CMD ["carepath", "serve", "--host", "0.0.0.0"]
