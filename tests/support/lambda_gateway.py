"""A stand-in for API Gateway's Lambda proxy integration, for end-to-end tests of the
packaged stack: serves HTTP on 127.0.0.1:PORT and hands each POST to the packaged app's
handler as a REST API event, bodies base64-encoded as with binaryMediaTypes ``*/*``.

Run it from the extracted deployment.zip with ``python -I -S lambda_gateway.py PORT STAGE``:
no site-packages, so every import the app makes comes from the zip. Standard library only.
"""
import base64
import http.server
import sys

sys.path.insert(0, ".")
import app  # noqa: E402  (the packaged app, from the current directory)

STAGE = sys.argv[2] if len(sys.argv) > 2 else "api"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        event = {"resource": self.path, "path": self.path, "httpMethod": "POST",
                 "requestContext": {"resourcePath": self.path, "httpMethod": "POST",
                                    "stage": STAGE},
                 "headers": dict(self.headers.items()), "pathParameters": {},
                 "multiValueQueryStringParameters": None, "stageVariables": {},
                 "body": base64.b64encode(body).decode("ascii"), "isBase64Encoded": True}
        result = app.app(event, None)
        data = result.get("body") or ""
        data = base64.b64decode(data) if result.get("isBase64Encoded") else data.encode("utf-8")
        self.send_response(result["statusCode"])
        for name, value in (result.get("headers") or {}).items():
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
