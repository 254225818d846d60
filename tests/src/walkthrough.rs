//! The Docker walkthrough as a learner meets it (the classic Play with
//! Docker tutorial typed into an instance's terminal), shared by the tests
//! of both instance profiles: the strict profile's built-in engine
//! (`tests/docker_walkthrough.rs`) and the real dockerd of the nesting
//! profile (`tests/docker_nesting.rs`), which must print the same.

use std::time::{Duration, Instant};

use crate::{proxy_client, wait_listed, TermClient, TestServer};

/// Long enough for a first `docker run` (pull, unpack) on a busy machine.
pub const WAIT: Duration = Duration::from_secs(90);

/// An instance's shell through its terminal, one command line at a time.
pub struct Shell {
    pub term: TermClient,
    node: String,
    /// Numbers the end markers, so each one is new.
    steps: u32,
}

impl Shell {
    pub async fn open(server: &TestServer, sid: &str, node: &str) -> Shell {
        let mut term = server.terminal(sid, node, "").await;
        // Wide enough that docker's tables never wrap.
        term.send_control(serde_json::json!({"type": "resize", "cols": 250, "rows": 50}))
            .await;
        let mut shell = Shell {
            term,
            node: node.to_string(),
            steps: 0,
        };
        shell.type_line("true").await;
        shell
    }

    /// Type `line` at the prompt and return what the terminal showed until
    /// it finished: a marker echoed after it, whose value the shell computes
    /// (the typed text shows the sum, not its value). Control sequences
    /// are left out.
    pub async fn type_line(&mut self, line: &str) -> String {
        self.steps += 1;
        let start = self.term.screen.len();
        let marker = format!("END-{}", 1000 + self.steps);
        self.term
            .send(&format!("{line}; echo END-$((1000+{}))\r", self.steps))
            .await;
        self.term.wait_for(&marker, WAIT).await;
        let shown = String::from_utf8_lossy(&self.term.screen[start..]).into_owned();
        let output = plain(&shown[..shown.rfind(&marker).unwrap()]);
        eprintln!("$ {line}\n{output}");
        output
    }

    /// Read until the instance's prompt shows after `after` (e.g. once a
    /// container's shell exits).
    pub async fn wait_for_prompt_after(&mut self, after: &str) {
        let prompt = format!("root@{}", self.node);
        let since = Instant::now();
        loop {
            let text = self.term.text();
            let tail = &text[text.rfind(after).expect("marker shown")..];
            if tail.contains(&prompt) {
                return;
            }
            assert!(since.elapsed() < WAIT, "no prompt after {after}: {text}");
            self.term.drain(Duration::from_millis(200)).await;
        }
    }
}

/// `text` without terminal control sequences (CSI: `ESC [ ... final`), such
/// as bash's bracketed-paste switches and docker's progress cursor moves.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
        } else if chars.next() == Some('[') {
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

/// The output's lines, without control sequences or the terminal's carriage
/// returns, and with runs of spaces (docker's column padding) collapsed.
pub fn rows(output: &str) -> Vec<String> {
    plain(output)
        .split(['\n', '\r'])
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect()
}

/// The rows after the table header `header` (columns single-spaced).
pub fn table(output: &str, header: &str) -> Vec<String> {
    let rows = rows(output);
    let at = rows
        .iter()
        .position(|r| r == header)
        .unwrap_or_else(|| panic!("no header {header:?} in:\n{output}"));
    rows[at + 1..].to_vec()
}

pub const IMAGES: &str = "REPOSITORY TAG IMAGE ID CREATED SIZE";
pub const CONTAINERS: &str = "CONTAINER ID IMAGE COMMAND CREATED STATUS PORTS NAMES";

pub fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The walkthrough's steps in `node`'s terminal, asserting what the docker
/// client prints at each: pull, an interactive container, a published web
/// server reached through the playground's proxy, logs, exec, stop, rm,
/// rmi. The instance must have no images or containers yet.
pub async fn play_with_docker(server: &TestServer, sid: &str, node: &str) {
    let mut sh = Shell::open(server, sid, node).await;

    // A new instance has pulled nothing yet: the header alone.
    let out = sh.type_line("docker image ls").await;
    assert_eq!(table(&out, IMAGES), Vec::<String>::new(), "{out}");
    let out = sh.type_line("docker ps").await;
    assert_eq!(table(&out, CONTAINERS), Vec::<String>::new(), "{out}");

    let out = sh.type_line("docker pull busybox").await;
    assert!(
        out.contains("latest: Pulling from library/busybox"),
        "{out}"
    );
    assert!(out.contains("Digest: sha256:"), "{out}");
    assert!(
        out.contains("Status: Downloaded newer image for busybox:latest"),
        "{out}"
    );
    assert!(out.contains("docker.io/library/busybox:latest"), "{out}");
    let out = sh.type_line("docker pull busybox").await;
    assert!(
        out.contains("Status: Image is up to date for busybox:latest"),
        "{out}"
    );
    let out = sh.type_line("docker image ls").await;
    let images = table(&out, IMAGES);
    assert_eq!(images.len(), 1, "{out}");
    let row: Vec<&str> = images[0].split(' ').collect();
    assert_eq!(&row[..2], ["busybox", "latest"], "{out}");
    assert!(is_hex(row[2], 12), "image id: {out}");

    // An interactive container: typed ahead while the client pulls, the
    // lines go to the container's shell once it runs.
    sh.term
        .send("docker run -it --name test debian:bookworm-slim /bin/sh\r")
        .await;
    sh.term
        .send("cat /etc/os-release; echo IN-$((6*7))\r")
        .await;
    let shown = sh.term.wait_for("IN-42", WAIT).await;
    assert!(
        shown.contains("Unable to find image 'debian:bookworm-slim' locally"),
        "{shown}"
    );
    assert!(
        shown.contains("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\""),
        "{shown}"
    );
    sh.term.send("exit\r").await;
    sh.wait_for_prompt_after("IN-42").await;

    let out = sh.type_line("docker ps -a").await;
    let containers = table(&out, CONTAINERS);
    assert_eq!(containers.len(), 1, "{out}");
    let test = &containers[0];
    assert!(test.starts_with(|c: char| c.is_ascii_hexdigit()), "{out}");
    assert!(test.contains(" debian:bookworm-slim \"/bin/sh\" "), "{out}");
    assert!(test.contains(" Exited (0) "), "{out}");
    assert!(test.ends_with(" test"), "{out}");

    // A web server, published on the instance's port 80.
    let out = sh
        .type_line("docker run -d --name web -p 80:80 nginx")
        .await;
    let id = rows(&out)
        .into_iter()
        .find(|r| is_hex(r, 64))
        .unwrap_or_else(|| panic!("no container id printed: {out}"));
    eprintln!("web is {id}");
    let out = sh.type_line("docker ps").await;
    let running = table(&out, CONTAINERS);
    assert_eq!(running.len(), 1, "{out}");
    assert!(running[0].starts_with(&id[..12]), "{out}");
    assert!(running[0].contains(" nginx "), "{out}");
    assert!(running[0].contains("80->80/tcp"), "{out}");

    // The playground sees the port and links it through its proxy.
    let url = wait_listed(server, sid, 80, true, Duration::from_secs(10))
        .await
        .expect("port 80 listed");
    let link = reqwest::Url::parse(&url).unwrap();
    let client = proxy_client(&link);
    let page = client
        .get(link)
        .header("user-agent", "walkthrough-check/1")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "{url}");
    let body = page.text().await.unwrap();
    assert!(body.contains("<h1>Welcome to nginx!</h1>"), "{body}");

    // nginx's access log is its output: the fetch above is in it.
    let out = sh.type_line("docker logs web").await;
    assert!(
        out.contains("\"GET / HTTP/1.1\" 200") && out.contains("\"walkthrough-check/1\""),
        "{out}"
    );

    sh.term.send("docker exec -it web sh\r").await;
    sh.term
        .send("cat /usr/share/nginx/html/index.html; echo EXEC-$(cat /proc/1/comm)-$((7*6))\r")
        .await;
    let shown = sh.term.wait_for("EXEC-nginx-42", WAIT).await;
    assert!(
        shown.contains("This nginx runs in a container of the playground"),
        "{shown}"
    );
    sh.term.send("exit\r").await;
    sh.wait_for_prompt_after("EXEC-nginx-42").await;

    let out = sh.type_line("docker stop web").await;
    assert_eq!(rows(&out).last().map(String::as_str), Some("web"), "{out}");
    let out = sh.type_line("docker rm web").await;
    assert_eq!(rows(&out).last().map(String::as_str), Some("web"), "{out}");
    let out = sh.type_line("docker rm test").await;
    assert_eq!(rows(&out).last().map(String::as_str), Some("test"), "{out}");
    let out = sh.type_line("docker ps -a").await;
    assert_eq!(table(&out, CONTAINERS), Vec::<String>::new(), "{out}");

    let out = sh.type_line("docker rmi nginx").await;
    let lines = rows(&out);
    assert!(lines.iter().any(|l| l == "Untagged: nginx:latest"), "{out}");
    assert!(
        lines.iter().any(|l| l
            .strip_prefix("Deleted: sha256:")
            .is_some_and(|d| is_hex(d, 64))),
        "{out}"
    );
    let out = sh.type_line("docker image ls").await;
    let mut left: Vec<String> = table(&out, IMAGES)
        .iter()
        .map(|r| r.split(' ').take(2).collect::<Vec<_>>().join(":"))
        .collect();
    left.sort();
    assert_eq!(left, ["busybox:latest", "debian:bookworm-slim"], "{out}");

    sh.term.close().await;
}
