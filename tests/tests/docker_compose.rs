//! The real Docker of nesting instances with what tutorials do next, all
//! from the offline images (no Docker Hub): a three-service Compose
//! application (an nginx front proxying to a Python API built by Compose,
//! which counts visits in Redis) on a user-defined network with a named
//! volume, through `docker compose` and `docker-compose`; and a private
//! registry (`registry:2` with htpasswd authentication) on one instance that
//! a second instance of the session logs in to, pushes to and pulls from.
//! Needs root and the offline images (`scripts/build-offline-images`).

use std::time::Duration;

use playground_protocol::ExecResponse;
use playground_tests::TestServer;

/// What the tests start servers with: the real dockerd in every instance.
const NESTING: &str = "--instance-profile=nesting";

/// `script` in `node` with a time limit of `secs` (the exec API's default
/// of 60 s is short for a first build on a busy machine), logged.
async fn sh(server: &TestServer, sid: &str, node: &str, script: &str, secs: u64) -> ExecResponse {
    let response = server
        .http
        .post(server.url(&format!("/api/sessions/{sid}/instances/{node}/exec")))
        .json(&serde_json::json!({ "cmd": ["sh", "-c", script], "timeout_secs": secs }))
        .timeout(Duration::from_secs(secs + 30))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let out: ExecResponse = response.json().await.unwrap();
    eprintln!(
        "[{node}] $ {script}\n{}{}[exit {}{}]",
        out.stdout,
        out.stderr,
        out.exit_code,
        if out.timed_out { ", timed out" } else { "" }
    );
    out
}

/// `sh`, which must succeed.
async fn ok(server: &TestServer, sid: &str, node: &str, script: &str, secs: u64) -> ExecResponse {
    let out = sh(server, sid, node, script, secs).await;
    assert_eq!(out.exit_code, 0, "`{script}` failed in {node}: {out:?}");
    out
}

/// The application: written into the instance as a learner would, with
/// heredocs. The API talks RESP to Redis over a plain socket (no pip).
const WRITE_APP: &str = r#"set -e
mkdir -p /root/app/api && cd /root/app
cat > compose.yaml <<'YAML'
services:
  front:
    image: nginx
    ports:
      - "8080:80"
    volumes:
      - ./nginx.conf:/etc/nginx/nginx.conf:ro
    networks: [backend]
    depends_on: [api]
  api:
    build: ./api
    environment:
      REDIS_HOST: cache
    networks: [backend]
    depends_on: [cache]
  cache:
    image: redis
    volumes:
      - counts:/data
    networks: [backend]
volumes:
  counts:
networks:
  backend:
YAML
cat > nginx.conf <<'CONF'
events {}
http {
  server {
    listen 80;
    location / {
      proxy_pass http://api:8000;
    }
  }
}
CONF
cat > api/Dockerfile <<'DOCKERFILE'
FROM python:3-slim
WORKDIR /app
COPY app.py .
EXPOSE 8000
CMD ["python3", "app.py"]
DOCKERFILE
cat > api/app.py <<'PY'
import http.server
import os
import socket

CACHE = (os.environ["REDIS_HOST"], 6379)


def redis(*words):
    """One command in RESP; the first line of the answer."""
    command = b"*%d\r\n" % len(words)
    for word in words:
        word = word.encode()
        command += b"$%d\r\n%s\r\n" % (len(word), word)
    with socket.create_connection(CACHE, timeout=5) as conn:
        conn.sendall(command)
        return conn.makefile("rb").readline().decode().strip()


class Api(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        visits = redis("INCR", "visits").lstrip(":")
        body = f"visit {visits}, counted by {socket.gethostname()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


print("api listening on :8000", flush=True)
http.server.ThreadingHTTPServer(("", 8000), Api).serve_forever()
PY
"#;

/// The visit number in the front's answer (`visit N, counted by ...`).
fn visit(out: &ExecResponse) -> u64 {
    let body = out
        .stdout
        .lines()
        .find(|l| l.starts_with("visit "))
        .unwrap_or_else(|| panic!("no visit in {out:?}"));
    body["visit ".len()..body.find(',').unwrap()]
        .parse()
        .unwrap_or_else(|_| panic!("no number in {body:?}"))
}

/// The front, once it answers (nginx starts after the API is created, not
/// ready): the whole HTTP answer with headers.
const GET_FRONT: &str = "for i in $(seq 120); do curl -sfi http://localhost:8080/count && exit 0; sleep 0.5; done; exit 1";

#[tokio::test(flavor = "multi_thread")]
async fn a_compose_application_of_three_services_up_and_down() {
    let (server, sid, node) = TestServer::with_instance(&[NESTING]).await;
    let (sid, node) = (sid.as_str(), node.as_str());
    ok(&server, sid, node, WRITE_APP, 60).await;

    let out = ok(&server, sid, node, "docker compose version", 60).await;
    // Debian's prints `2.26.1-4`, upstream's `v2.26.1`.
    assert!(
        out.stdout.starts_with("Docker Compose version 2.")
            || out.stdout.starts_with("Docker Compose version v2."),
        "{out:?}"
    );

    // Up: the API image is built from python:3-slim, nginx and redis are
    // pulled from the offline images; network and volume are made first.
    let out = ok(
        &server,
        sid,
        node,
        "cd /root/app && docker compose up -d 2>&1",
        600,
    )
    .await;
    assert!(
        out.stdout.contains("FROM docker.io/library/python:3-slim"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("naming to docker.io/library/app-api"),
        "{out:?}"
    );
    for shown in [
        "Network app_backend  Created",
        "Volume \"app_counts\"  Created",
        "Container app-cache-1  Started",
        "Container app-api-1  Started",
        "Container app-front-1  Started",
    ] {
        assert!(out.stdout.contains(shown), "no {shown:?} in {out:?}");
    }
    let out = ok(
        &server,
        sid,
        node,
        "docker image ls --format '{{.Repository}}:{{.Tag}}' | sort",
        60,
    )
    .await;
    // (BuildKit keeps python:3-slim in its own store, not in the list.)
    for image in ["app-api:latest", "nginx:latest", "redis:latest"] {
        assert!(
            out.stdout.lines().any(|l| l == image),
            "no {image} in {out:?}"
        );
    }

    // Three services running, in the table and by state.
    let out = ok(&server, sid, node, "cd /root/app && docker compose ps", 60).await;
    let rows: Vec<&str> = out.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{out:?}");
    for (row, name) in rows.iter().zip(["app-api-1", "app-cache-1", "app-front-1"]) {
        assert!(row.starts_with(name), "{row:?} is not {name}: {out:?}");
        assert!(row.contains(" Up "), "{row:?} not up: {out:?}");
    }
    assert!(rows[2].contains("0.0.0.0:8080->80/tcp"), "{out:?}");
    let out = ok(
        &server,
        sid,
        node,
        "cd /root/app && docker compose ps --format '{{.Service}} {{.State}}'",
        60,
    )
    .await;
    assert_eq!(
        out.stdout, "api running\ncache running\nfront running\n",
        "{out:?}"
    );

    // Through the front, twice: nginx answers with the API's page, and the
    // count in Redis goes up by one per visit.
    let first = ok(&server, sid, node, GET_FRONT, 120).await;
    assert!(first.stdout.starts_with("HTTP/1.1 200 OK"), "{first:?}");
    assert!(first.stdout.contains("Server: nginx"), "{first:?}");
    let api_host = ok(
        &server,
        sid,
        node,
        "docker inspect -f '{{.Config.Hostname}}' app-api-1",
        60,
    )
    .await
    .stdout
    .trim()
    .to_string();
    assert!(
        first.stdout.contains(&format!("counted by {api_host}\n")),
        "{first:?}"
    );
    let second = ok(&server, sid, node, GET_FRONT, 120).await;
    let (n1, n2) = (visit(&first), visit(&second));
    assert_eq!(n2, n1 + 1, "{first:?} {second:?}");

    // The API logged both requests (Python's request log, on stderr).
    let out = ok(
        &server,
        sid,
        node,
        "cd /root/app && docker compose logs api",
        60,
    )
    .await;
    // Compose starts each line with an erase-line sequence, TTY or not.
    let logged = out
        .stdout
        .lines()
        .map(|l| l.trim_start_matches("\x1b[2K"))
        .filter(|l| l.starts_with("api-1  |") && l.contains("\"GET /count HTTP/1.0\" 200"))
        .count();
    assert_eq!(logged, 2, "{out:?}");
    assert!(out.stdout.contains("api listening on :8000"), "{out:?}");

    // Into the services: Redis answers and holds the count; names resolve
    // on the user-defined network.
    let out = ok(
        &server,
        sid,
        node,
        "cd /root/app && docker compose exec -T cache redis-cli ping",
        60,
    )
    .await;
    assert_eq!(out.stdout, "PONG\n", "{out:?}");
    let out = ok(
        &server,
        sid,
        node,
        "cd /root/app && docker compose exec -T cache redis-cli get visits",
        60,
    )
    .await;
    assert_eq!(out.stdout, format!("{n2}\n"), "{out:?}");
    let out = ok(
        &server,
        sid,
        node,
        "cd /root/app && docker compose exec -T api python3 -c \"import socket; print(socket.gethostbyname('cache') == socket.gethostbyname('app-cache-1'), socket.gethostbyname('front').count('.'))\"",
        60,
    )
    .await;
    assert_eq!(out.stdout, "True 3\n", "{out:?}");
    let out = ok(
        &server,
        sid,
        node,
        "docker network inspect -f '{{.Driver}} {{len .Containers}}' app_backend; docker volume inspect -f '{{.Driver}} {{.Mountpoint}}' app_counts",
        60,
    )
    .await;
    assert_eq!(
        out.stdout, "bridge 3\nlocal /var/lib/docker/volumes/app_counts/_data\n",
        "{out:?}"
    );

    // Down without -v keeps the volume: up again with the v1-style
    // command, and the count goes on from where it was (Redis saved it on
    // the way down).
    ok(
        &server,
        sid,
        node,
        "cd /root/app && docker compose down 2>&1",
        180,
    )
    .await;
    let out = ok(
        &server,
        sid,
        node,
        "docker ps -aq | wc -l; docker volume ls -q",
        60,
    )
    .await;
    assert_eq!(out.stdout, "0\napp_counts\n", "{out:?}");
    let out = ok(
        &server,
        sid,
        node,
        "cd /root/app && docker-compose up -d 2>&1",
        300,
    )
    .await;
    assert!(out.stdout.contains("Container app-front-1"), "{out:?}");
    let third = ok(&server, sid, node, GET_FRONT, 120).await;
    assert_eq!(visit(&third), n2 + 1, "{third:?}");

    // Down with -v: no container, network or volume of the project left.
    let out = ok(
        &server,
        sid,
        node,
        "cd /root/app && docker compose down -v 2>&1",
        180,
    )
    .await;
    for shown in [
        "Container app-front-1",
        "Container app-api-1",
        "Container app-cache-1",
        "Network app_backend",
        "Volume app_counts",
        "Removed",
    ] {
        assert!(out.stdout.contains(shown), "no {shown:?} in {out:?}");
    }
    let out = ok(
        &server,
        sid,
        node,
        "docker ps -a --format '{{.Names}}'; echo --; docker volume ls -q; echo --; docker network ls --format '{{.Name}}' | sort",
        60,
    )
    .await;
    assert_eq!(out.stdout, "--\n--\nbridge\nhost\nnone\n", "{out:?}");
    let out = sh(
        &server,
        sid,
        node,
        "curl -sS -m 5 http://localhost:8080/count",
        60,
    )
    .await;
    assert_ne!(out.exit_code, 0, "the front still answers: {out:?}");

    server.finish(sid).await;
}

/// The registry's user and password, and the password's bcrypt entry
/// (`htpasswd -Bbn tester s3cret-pass`, made once: neither the instances
/// nor the offline images have `htpasswd`).
const USER: &str = "tester";
const PASSWORD: &str = "s3cret-pass";
const HTPASSWD: &str = "tester:$2b$05$abcdefghijklmnopqrstuuV7fpPozvyqJfnY19y0802WTlXUm6Rjy";

#[tokio::test(flavor = "multi_thread")]
async fn push_and_pull_through_a_registry_with_login_on_the_session_network() {
    let (server, sid, node1) = TestServer::with_instance(&[NESTING]).await;
    let node2 = server.add_instance(&sid).await;
    let (sid, node1, node2) = (sid.as_str(), node1.as_str(), node2.as_str());

    // node1 runs the registry, with htpasswd authentication, on port 5000.
    let out = ok(
        &server,
        sid,
        node1,
        &format!(
            "mkdir -p /root/auth && echo '{HTPASSWD}' > /root/auth/htpasswd && \
             docker run -d --name registry -p 5000:5000 -v /root/auth:/auth \
             -e REGISTRY_AUTH=htpasswd -e 'REGISTRY_AUTH_HTPASSWD_REALM=Registry Realm' \
             -e REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd registry:2"
        ),
        300,
    )
    .await;
    assert!(out.stdout.trim().len() == 64, "{out:?}");
    let out = ok(
        &server,
        sid,
        node1,
        "for i in $(seq 120); do curl -si http://localhost:5000/v2/ | tr -d '\\r' | grep -i '^www-authenticate' && exit 0; sleep 0.5; done; exit 1",
        120,
    )
    .await;
    assert_eq!(
        out.stdout.to_lowercase(),
        "www-authenticate: basic realm=\"registry realm\"\n",
        "{out:?}"
    );

    // node2 finds node1 by name and reaches the published port.
    let out = ok(&server, sid, node2, &format!("getent hosts {node1}"), 60).await;
    assert!(out.stdout.trim_end().ends_with(node1), "{out:?}");
    let out = ok(
        &server,
        sid,
        node2,
        &format!("curl -s -o /dev/null -w '%{{http_code}}\\n' http://{node1}:5000/v2/; curl -s -u {USER}:{PASSWORD} http://{node1}:5000/v2/_catalog"),
        60,
    )
    .await;
    assert_eq!(out.stdout, "401\n{\"repositories\":[]}\n", "{out:?}");

    // A plain-HTTP registry is refused until daemon.json lists it.
    let out = ok(&server, sid, node2, "docker pull -q busybox", 300).await;
    assert_eq!(out.stdout, "docker.io/library/busybox:latest\n", "{out:?}");
    let out = sh(
        &server,
        sid,
        node2,
        &format!("echo {PASSWORD} | docker login {node1}:5000 -u {USER} --password-stdin"),
        60,
    )
    .await;
    assert_ne!(out.exit_code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("http: server gave HTTP response to HTTPS client"),
        "{out:?}"
    );

    // insecure-registries, and dockerd restarted: killed, it starts again
    // on the next use of the socket, with the new configuration.
    let out = ok(
        &server,
        sid,
        node2,
        &format!(
            "python3 - <<'PY'
import json
path = '/etc/docker/daemon.json'
config = json.load(open(path))
config['insecure-registries'] = ['{node1}:5000']
json.dump(config, open(path, 'w'), indent=2)
PY
cat /etc/docker/daemon.json
echo
old=$(pidof dockerd); echo old $old; [ -n \"$old\" ] || exit 1
kill $old
for i in $(seq 100); do kill -0 $old 2>/dev/null || break; sleep 0.2; done
kill -0 $old 2>/dev/null && echo still running
echo configs $(docker info -f '{{{{json .RegistryConfig.IndexConfigs}}}}')
new=$(pidof dockerd); echo new $new
[ -n \"$new\" ] && [ \"$new\" != \"$old\" ]"
        ),
        180,
    )
    .await;
    assert!(out.stdout.contains("\"registry-mirrors\""), "{out:?}");
    assert!(!out.stdout.contains("still running"), "{out:?}");
    let configs: serde_json::Value = serde_json::from_str(
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix("configs "))
            .unwrap_or_else(|| panic!("no IndexConfigs in {out:?}")),
    )
    .unwrap();
    assert_eq!(
        configs[format!("{node1}:5000")]["Secure"],
        serde_json::Value::Bool(false),
        "{out:?}"
    );

    // A wrong password is refused, with the registry's reason.
    let out = sh(
        &server,
        sid,
        node2,
        &format!("echo wrong-pass | docker login {node1}:5000 -u {USER} --password-stdin"),
        60,
    )
    .await;
    assert_ne!(out.exit_code, 0, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "login attempt to http://{node1}:5000/v2/ failed with status: 401 Unauthorized"
        )),
        "{out:?}"
    );
    assert!(!out.stdout.contains("Login Succeeded"), "{out:?}");

    // Without logging in, a push is refused too.
    let out = sh(
        &server,
        sid,
        node2,
        &format!("docker tag busybox {node1}:5000/me/bb && docker push {node1}:5000/me/bb"),
        120,
    )
    .await;
    assert_ne!(out.exit_code, 0, "{out:?}");
    assert!(out.stderr.contains("no basic auth credentials"), "{out:?}");

    // Logged in: the push goes through.
    let out = ok(
        &server,
        sid,
        node2,
        &format!("echo {PASSWORD} | docker login {node1}:5000 -u {USER} --password-stdin"),
        60,
    )
    .await;
    assert!(out.stdout.contains("Login Succeeded"), "{out:?}");
    let out = ok(
        &server,
        sid,
        node2,
        &format!("docker push {node1}:5000/me/bb"),
        180,
    )
    .await;
    assert!(
        out.stdout.contains(&format!(
            "The push refers to repository [{node1}:5000/me/bb]"
        )),
        "{out:?}"
    );
    assert!(out.stdout.contains("latest: digest: sha256:"), "{out:?}");
    let pushed = out
        .stdout
        .split("digest: ")
        .nth(1)
        .and_then(|d| d.split_whitespace().next())
        .unwrap()
        .to_string();
    let out = ok(
        &server,
        sid,
        node1,
        &format!("curl -s -u {USER}:{PASSWORD} http://localhost:5000/v2/_catalog; curl -s -u {USER}:{PASSWORD} http://localhost:5000/v2/me/bb/tags/list"),
        60,
    )
    .await;
    assert_eq!(
        out.stdout, "{\"repositories\":[\"me/bb\"]}\n{\"name\":\"me/bb\",\"tags\":[\"latest\"]}\n",
        "{out:?}"
    );

    // Pull it back on node2 after removing it there, and run it.
    let out = ok(
        &server,
        sid,
        node2,
        &format!("docker rmi {node1}:5000/me/bb busybox >/dev/null && docker pull {node1}:5000/me/bb && docker run --rm {node1}:5000/me/bb echo ok"),
        180,
    )
    .await;
    assert!(out.stdout.contains(&format!("Digest: {pushed}")), "{out:?}");
    assert!(out.stdout.ends_with("\nok\n"), "{out:?}");

    // Logged out, the registry refuses a pull.
    let out = sh(
        &server,
        sid,
        node2,
        &format!("docker logout {node1}:5000 && docker rmi -f {node1}:5000/me/bb >/dev/null && docker pull {node1}:5000/me/bb"),
        120,
    )
    .await;
    assert_ne!(out.exit_code, 0, "{out:?}");
    assert!(out.stdout.contains("Removing login credentials"), "{out:?}");
    assert!(out.stderr.contains("no basic auth credentials"), "{out:?}");

    // On node1 itself, through localhost (insecure by default): log in,
    // pull the image node2 pushed, run it.
    let out = ok(
        &server,
        sid,
        node1,
        &format!("echo {PASSWORD} | docker login localhost:5000 -u {USER} --password-stdin && docker pull localhost:5000/me/bb && docker run --rm localhost:5000/me/bb echo ok"),
        180,
    )
    .await;
    assert!(out.stdout.contains(&format!("Digest: {pushed}")), "{out:?}");
    assert!(out.stdout.ends_with("\nok\n"), "{out:?}");

    ok(&server, sid, node1, "docker rm -f registry", 60).await;
    server.finish(sid).await;
}
