//! `docker build` (the classic builder) through the real client in an
//! instance: steps and RUN output in the stream, the image's files (COPY
//! modes, whiteouts of deleted files, opaque directories) and config, a
//! failing RUN and unsupported instructions, images per instance, a build
//! on debian. Needs root and the offline images.

use std::time::Duration;

use playground_tests::{leftovers, wait_until_clean, TestServer};

const DOCKERFILE: &str = r#"
# comments and continuations
FROM busybox
ARG GREETING=hello
ENV APP_HOME=/app \
    MODE="built in ${GREETING}"
LABEL purpose=test "two words"=yes
WORKDIR $APP_HOME/work
COPY greet.sh ./bin/
COPY data /srv/data
COPY ["notes.txt", "/srv/notes.txt"]
RUN echo "building with $GREETING in $(pwd)" && rm /etc/group && \
    rm -rf /srv/data && mkdir /srv/data && echo fresh > /srv/data/new.txt
EXPOSE 8080 9000/udp
VOLUME /var/cache/app
STOPSIGNAL SIGINT
USER 1000:1000
CMD ["sh", "-c", "echo $MODE from $(pwd)"]
"#;

fn setup_script() -> String {
    format!(
        "mkdir -p /app/data/sub && cd /app && cat > Dockerfile <<'EOF'\n{DOCKERFILE}\nEOF\n\
         printf '#!/bin/sh\\necho hi\\n' > greet.sh && chmod 750 greet.sh && \
         echo old > data/old.txt && echo deep > data/sub/deep.txt && echo notes > notes.txt && chmod 604 notes.txt"
    )
}

/// How many images of the store were built here (pulled ones have repo
/// digests).
fn built_images(data_dir: &std::path::Path) -> usize {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data_dir.join("oci/index.json")).unwrap()).unwrap();
    index["images"]
        .as_object()
        .unwrap()
        .values()
        .filter(|i| i["repo_digests"].as_array().is_none_or(|d| d.is_empty()))
        .count()
}

/// Wait until `built_images` is `n`; what it was last.
async fn wait_for_built_images(data_dir: &std::path::Path, n: usize) -> usize {
    let mut count = built_images(data_dir);
    for _ in 0..100 {
        if count == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        count = built_images(data_dir);
    }
    count
}

/// `used-inodes` of the instance's disk after a sync: a container layer
/// left behind would show.
const INODES: &str = "sync; df -Pi / | awk 'NR==2 {print $3}'";

#[tokio::test(flavor = "multi_thread")]
async fn build_run_inspect_fail_and_isolation() {
    let (server, sid, node) = TestServer::with_instance(&[]).await;
    let (sid, node) = (sid.as_str(), node.as_str());
    let out = server
        .run(
            sid,
            node,
            &format!("{} && docker pull -q busybox", setup_script()),
        )
        .await;
    assert_eq!(out.exit_code, 0, "{out:?}");
    let layers_dir = server.data_dir.path().join("oci/layers");
    let count = |dir: &std::path::Path| std::fs::read_dir(dir).unwrap().count();
    let base_layers_in_store = count(&layers_dir);

    let out = server
        .run(sid, node, "docker build -t hello:1 /app 2>&1; echo code=$?")
        .await;
    let build_text = out.stdout.clone();
    let text = &out.stdout;
    assert!(text.contains("Step 1/14 : FROM busybox\n"), "{out:?}");
    assert!(text.contains("Step 9/14 : RUN echo"), "{out:?}");
    assert!(
        text.contains("building with hello in /app/work\n"),
        "RUN output with the ARG and WORKDIR: {out:?}"
    );
    let built = text
        .lines()
        .find_map(|l| l.strip_prefix("Successfully built "))
        .expect("Successfully built");
    assert_eq!(built.len(), 12, "{out:?}");
    assert!(built.bytes().all(|b| b.is_ascii_hexdigit()), "{out:?}");
    // The last step's id is the image's.
    assert!(
        text.contains(&format!(" ---> {built}\nSuccessfully built")),
        "{out:?}"
    );
    assert!(text.contains("Successfully tagged hello:1\n"), "{out:?}");
    assert!(text.ends_with("code=0\n"), "{out:?}");

    // CMD with ENV and WORKDIR; USER.
    let out = server
        .run(
            sid,
            node,
            "docker run --rm hello:1; docker run --rm hello:1 id -u",
        )
        .await;
    assert_eq!(
        out.stdout, "built in hello from /app/work\n1000\n",
        "{out:?}"
    );

    // COPY's files and modes; a base file deleted by RUN (a whiteout); a
    // directory removed and made again (opaque: the old files are gone).
    let out = server
        .run(
            sid,
            node,
            "docker run --rm -u 0 hello:1 sh -c 'stat -c \"%n %a %u\" /app/work/bin/greet.sh /srv/notes.txt /srv/data/new.txt; /app/work/bin/greet.sh; cat /srv/notes.txt; ls /srv/data; test -e /etc/group || echo no-group; test -e /etc/passwd && echo passwd'",
        )
        .await;
    assert_eq!(
        out.stdout,
        "/app/work/bin/greet.sh 750 0\n/srv/notes.txt 604 0\n/srv/data/new.txt 644 0\nhi\nnotes\nnew.txt\nno-group\npasswd\n",
        "{out:?}"
    );

    // The config as docker inspect shows it.
    let out = server
        .run(
            sid,
            node,
            "docker inspect -f '{{.Config.WorkingDir}}|{{.Config.User}}|{{json .Config.ExposedPorts}}|{{json .Config.Env}}|{{.Config.Labels.purpose}}|{{index .Config.Labels \"two words\"}}|{{json .Config.Volumes}}|{{.Config.StopSignal}}|{{len .RootFS.Layers}}' hello:1; docker inspect -f '{{len .RootFS.Layers}}' busybox",
        )
        .await;
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    let fields: Vec<&str> = lines[0].split('|').collect();
    assert_eq!(fields[0], "/app/work", "{out:?}");
    assert_eq!(fields[1], "1000:1000", "{out:?}");
    assert_eq!(fields[2], r#"{"8080/tcp":{},"9000/udp":{}}"#, "{out:?}");
    assert!(
        fields[3].contains(r#""APP_HOME=/app","MODE=built in hello""#),
        "{out:?}"
    );
    assert_eq!(
        &fields[4..8],
        ["test", "yes", r#"{"/var/cache/app":{}}"#, "SIGINT"],
        "{out:?}"
    );
    // The base's layers, then WORKDIR's, three COPYs and RUN's.
    let base_layers: usize = lines[1].parse().unwrap();
    assert_eq!(
        fields[8].parse::<usize>().unwrap(),
        base_layers + 5,
        "{out:?}"
    );

    let out = server
        .run(
            sid,
            node,
            "docker image ls --format '{{.Repository}}:{{.Tag}} {{.ID}}'",
        )
        .await;
    assert!(out.stdout.contains(&format!("hello:1 {built}")), "{out:?}");
    // FROM shows the base image's id.
    let busybox = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("busybox:latest "))
        .expect("busybox listed");
    assert!(
        build_text.contains(&format!("FROM busybox\n ---> {busybox}\n")),
        "{build_text}"
    );

    // docker history: the steps, newest first, with the base's below.
    let out = server
        .run(
            sid,
            node,
            "docker history --no-trunc --format '{{.CreatedBy}}|{{.Size}}' hello:1",
        )
        .await;
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].contains(r#"CMD ["sh", "-c", "echo $MODE from $(pwd)"]"#),
        "{out:?}"
    );
    assert!(lines[0].ends_with("|0B"), "{out:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("/bin/sh -c echo \"building with") && !l.ends_with("|0B")),
        "{out:?}"
    );
    assert!(lines.len() > 14, "{out:?}");

    // A failing RUN: Docker's message and exit code, no image, no layer
    // left on the instance's disk nor in the store.
    let layers_before = count(&layers_dir);
    let out = server
        .run(
            sid,
            node,
            "mkdir /bad && cd /bad && printf 'FROM busybox\\nRUN echo one > /one\\nRUN echo before-failing && false\\nCMD true\\n' > Dockerfile",
        )
        .await;
    assert_eq!(out.exit_code, 0, "{out:?}");
    let inodes_before = server.run(sid, node, INODES).await.stdout;
    let out = server
        .run(
            sid,
            node,
            "cd /bad && docker build -t bad:1 . 2>&1; echo code=$?; docker image ls --format '{{.Repository}}' | grep -c bad",
        )
        .await;
    assert!(out.stdout.contains("before-failing\n"), "{out:?}");
    assert!(
        out.stdout.contains("The command '/bin/sh -c echo before-failing && false' returned a non-zero code: 1\ncode=1\n0\n"),
        "{out:?}"
    );
    assert_eq!(server.run(sid, node, INODES).await.stdout, inodes_before);
    assert_eq!(
        count(&layers_dir),
        layers_before,
        "the failed build's layers"
    );
    assert_eq!(count(&server.data_dir.path().join("oci/tmp")), 0);

    // Unsupported instructions are named before anything runs.
    let out = server
        .run(
            sid,
            node,
            "cd /bad && printf 'FROM busybox AS base\\nRUN true\\n' > Dockerfile && docker build . 2>&1; echo code=$?; printf 'FROM busybox\\nHEALTHCHECK NONE\\n' > Dockerfile && docker build . 2>&1; echo code=$?",
        )
        .await;
    assert!(
        out.stdout
            .contains("multi-stage builds (FROM ... AS name) are not supported"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("HEALTHCHECK is not supported"),
        "{out:?}"
    );
    assert_eq!(out.stdout.matches("code=1\n").count(), 2, "{out:?}");

    // The client exits with the failed command's code, as with Docker;
    // quiet, it shows the build's output only then.
    let out = server
        .run(
            sid,
            node,
            "cd /bad && printf 'FROM busybox\\nRUN echo quiet-but-failing; exit 3\\n' > Dockerfile && docker build -q . 2>&1; echo code=$?",
        )
        .await;
    assert!(
        out.stdout
            .contains("Step 2/2 : RUN echo quiet-but-failing; exit 3\n"),
        "{out:?}"
    );
    assert!(out.stdout.contains("\nquiet-but-failing\n"), "{out:?}");
    assert!(
        out.stdout.ends_with(
            "The command '/bin/sh -c echo quiet-but-failing; exit 3' returned a non-zero code: 3\ncode=3\n"
        ),
        "{out:?}"
    );

    // Another instance of the session does not see the image.
    let other = server.add_instance(sid).await;
    let out = server
        .run(sid, &other, "docker image ls --format '{{.Repository}}' | grep -c hello; docker run --rm hello:1 true 2>&1")
        .await;
    assert!(out.stdout.starts_with("0\n"), "{out:?}");
    assert!(
        out.stdout
            .contains("Unable to find image 'hello:1' locally"),
        "{out:?}"
    );

    // rmi drops it from the instance, and from the store with its layers:
    // nothing else can name it.
    assert_eq!(built_images(server.data_dir.path()), 1);
    let out = server
        .run(sid, node, "docker rmi hello:1 >/dev/null && docker image ls --format '{{.Repository}}' | grep -c hello")
        .await;
    assert_eq!(out.stdout, "0\n", "{out:?}");
    assert_eq!(wait_for_built_images(server.data_dir.path(), 0).await, 0);
    assert_eq!(count(&layers_dir), base_layers_in_store, "the built layers");

    server.finish(sid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn build_on_debian_with_build_args() {
    let (server, sid, node) = TestServer::with_instance(&[]).await;
    let (sid, node) = (sid.as_str(), node.as_str());
    let out = server
        .run(
            sid,
            node,
            "mkdir /d && cd /d && printf 'FROM debian:bookworm-slim\\nARG WHO=nobody\\nRUN echo \"made by $WHO\" > /etc/made && awk '\\''$2 ~ /^0+$/ {print $3}'\\'' /proc/net/route > /etc/gateway && useradd -m builder\\nUSER builder\\nWORKDIR /home/builder\\nRUN touch mine && ls -ln mine | cut -d\" \" -f3\\n' > Dockerfile && s=$(date +%s%N) && docker build -q --build-arg WHO=me -t deb:1 . ; echo code=$?; echo build_ms=$(( ($(date +%s%N) - s) / 1000000 )) >&2; docker run --rm deb:1 sh -c 'cat /etc/made; id -un; pwd; ls -ln /home/builder/mine | cut -d\" \" -f3-4; cat /etc/gateway'",
        )
        .await;
    // Two RUNs, each a container whose layer is exported and unpacked.
    eprintln!("debian build with two RUNs: {}", out.stderr.trim());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 7, "{out:?}");
    // RUN was on the instance's container bridge: its default route goes
    // through 172.17.0.1 (as /proc/net/route spells it).
    assert_eq!(lines[6], "010011AC", "{out:?}");
    assert!(
        lines[0].starts_with("sha256:"),
        "quiet prints the id: {out:?}"
    );
    assert_eq!(
        &lines[1..6],
        [
            "code=0",
            "made by me",
            "builder",
            "/home/builder",
            "1000 1000"
        ],
        "{out:?}"
    );

    // COPY into /bin/, a symlink to usr/bin in debian: the file lands in
    // /usr/bin and /bin stays a link. --chown takes the image's names.
    let out = server
        .run(
            sid,
            node,
            "mkdir /e && cd /e && printf '#!/bin/sh\\necho copied-tool\\n' > tool && chmod 755 tool && printf 'FROM debian:bookworm-slim\\nCOPY --chown=nobody:nogroup tool /bin/\\nWORKDIR /bin/work\\n' > Dockerfile && docker build -q -t tool . >/dev/null; docker run --rm tool sh -c 'tool; readlink /bin; pwd -P; stat -c %u:%g /usr/bin/tool'",
        )
        .await;
    assert_eq!(
        out.stdout, "copied-tool\nusr/bin\n/usr/bin/work\n65534:65534\n",
        "{out:?}"
    );
    assert_eq!(built_images(server.data_dir.path()), 2);
    let data_dir = server.data_dir.path().to_path_buf();
    server.delete_session(sid).await;
    // The instance's images went with it.
    assert_eq!(wait_for_built_images(&data_dir, 0).await, 0);
    let left = wait_until_clean(sid, &data_dir, Duration::from_secs(20)).await;
    assert!(left.is_empty(), "left behind: {left:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn disk_full_context_limit_networks_and_entrypoint() {
    let (server, sid, node) = TestServer::with_instance(&["--instance-disk-mib=128"]).await;
    let (sid, node) = (sid.as_str(), node.as_str());
    let out = server
        .run(
            sid,
            node,
            "mkdir /full && cd /full && printf 'FROM busybox\\nRUN dd if=/dev/zero of=/big bs=1M count=400\\n' > Dockerfile && docker pull -q busybox >/dev/null",
        )
        .await;
    assert_eq!(out.exit_code, 0, "{out:?}");
    let used = "sync; df -Pk / | awk 'NR==2 {print $3}'";
    let before: u64 = server
        .run(sid, node, used)
        .await
        .stdout
        .trim()
        .parse()
        .unwrap();

    // The RUN fills the instance's disk: its error, and its layer is gone.
    let out = server
        .run(
            sid,
            node,
            "cd /full && docker build -t full . 2>&1; echo code=$?",
        )
        .await;
    assert!(out.stdout.contains("No space left on device"), "{out:?}");
    assert!(
        out.stdout.contains("The command '/bin/sh -c dd if=/dev/zero of=/big bs=1M count=400' returned a non-zero code: 1\ncode=1\n"),
        "{out:?}"
    );
    let after: u64 = server
        .run(sid, node, used)
        .await
        .stdout
        .trim()
        .parse()
        .unwrap();
    assert!(
        after <= before + 64,
        "{before} KiB used before, {after} after"
    );
    assert_eq!(
        std::fs::read_dir(server.data_dir.path().join("oci/tmp"))
            .unwrap()
            .count(),
        0
    );

    // A context over the limit (a sparse file: it costs no disk) is refused.
    let out = server
        .run(
            sid,
            node,
            "mkdir /huge && cd /huge && truncate -s 300M zeros && echo 'FROM busybox' > Dockerfile && docker build . >/tmp/huge.log 2>&1; echo code=$?; tail -1 /tmp/huge.log",
        )
        .await;
    assert!(out.stdout.starts_with("code=1\n"), "{out:?}");
    assert!(out.stdout.contains("larger than 256 MiB"), "{out:?}");

    // --network: none gives RUN loopback only, host the instance's own
    // interfaces; the default is the bridge (see the debian test).
    let out = server
        .run(
            sid,
            node,
            "mkdir /n && cd /n && printf 'FROM busybox\\nRUN echo nets: $(tail -n +3 /proc/net/dev | cut -d: -f1 | sort)\\n' > Dockerfile && docker build --network none . | grep '^nets:'; docker build --network host . | grep '^nets:'; echo $(tail -n +3 /proc/net/dev | cut -d: -f1 | sort)",
        )
        .await;
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    assert_eq!(lines[0], "nets: lo", "{out:?}");
    assert_eq!(lines[1], format!("nets: {}", lines[2].trim()), "{out:?}");

    // An ARG before FROM picks the base; a new ENTRYPOINT drops the
    // base's CMD.
    let out = server
        .run(
            sid,
            node,
            "mkdir /ep && cd /ep && printf 'ARG BASE=nothing\\nFROM $BASE\\nENTRYPOINT [\"echo\", \"entry\"]\\n' > Dockerfile && docker build -q --build-arg BASE=busybox:latest -t ep . >/dev/null && docker run --rm ep && docker run --rm ep more",
        )
        .await;
    assert_eq!(out.stdout, "entry\nentry more\n", "{out:?}");

    // A client that goes away (Ctrl-C) ends its build: the RUN is killed
    // and its layer removed.
    let inodes_before = server.run(sid, node, INODES).await.stdout;
    let out = server
        .run(
            sid,
            node,
            "mkdir /gone && cd /gone && printf 'FROM busybox\\nRUN sleep 1000\\n' > Dockerfile && timeout -s INT 3 docker build . >/dev/null; for i in $(seq 100); do pgrep -x sleep >/dev/null || break; sleep 0.1; done; pgrep -x sleep | wc -l",
        )
        .await;
    assert_eq!(out.stdout, "0\n", "{out:?}");
    let mut inodes = String::new();
    for _ in 0..50 {
        inodes = server.run(sid, node, INODES).await.stdout;
        if inodes.trim().parse::<u64>().unwrap() <= inodes_before.trim().parse::<u64>().unwrap() + 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // (+2: the directory and Dockerfile made for it.)
    assert_eq!(
        inodes.trim().parse::<u64>().unwrap(),
        inodes_before.trim().parse::<u64>().unwrap() + 2
    );

    server.finish(sid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_during_a_build_is_cleaned_up_after_the_restart() {
    let (server, sid, node) = TestServer::with_instance(&[]).await;
    let (sid, node) = (sid.as_str(), node.as_str());
    let out = server
        .run(
            sid,
            node,
            "mkdir /c && cd /c && printf 'FROM busybox\\nRUN echo one > /one\\nRUN echo two > /two && sleep 1000\\n' > Dockerfile && touch /tmp/build.log && docker run --rm busybox true",
        )
        .await;
    assert_eq!(out.exit_code, 0, "{out:?}");
    let layers_dir = server.data_dir.path().join("oci/layers");
    let count = |dir: &std::path::Path| std::fs::read_dir(dir).map_or(0, |d| d.count());
    let layers_before = count(&layers_dir);
    let inodes_before = server.run(sid, node, INODES).await.stdout;

    // The build's second RUN is running when the server dies.
    let out = server
        .run(
            sid,
            node,
            "cd /c && (docker build . >/tmp/build.log 2>&1 &); for i in $(seq 300); do [ $(grep -c 'Running in' /tmp/build.log) = 2 ] && break; sleep 0.1; done; cat /tmp/build.log",
        )
        .await;
    assert_eq!(out.stdout.matches("Running in").count(), 2, "{out:?}");
    assert_eq!(
        count(&layers_dir),
        layers_before + 1,
        "the first RUN's layer"
    );
    // "Running in" comes before the process runs: wait for its sleep.
    let sleeping = |data_dir: &std::path::Path| {
        leftovers(sid, data_dir)
            .processes
            .iter()
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c == "sleep\n")
            })
            .count()
    };
    for _ in 0..100 {
        if sleeping(server.data_dir.path()) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let data_dir = server.crash().await;
    let builds_dir = data_dir.path().join("engine/builds");
    assert_eq!(count(&builds_dir), 1, "the build's work is listed");
    // The RUN's process outlived the server, in the instance.
    assert_eq!(sleeping(data_dir.path()), 1);

    // After the restart: the RUN's process and layer are gone, and so is
    // the layer the build stored.
    let server = TestServer::start_in(data_dir, &[]).await;
    assert_eq!(count(&layers_dir), layers_before, "the first RUN's layer");
    let mut inodes = String::new();
    for _ in 0..100 {
        inodes = server.run(sid, node, INODES).await.stdout;
        let sleeping = server.run(sid, node, "pgrep -x sleep | wc -l").await.stdout;
        if inodes == inodes_before && sleeping == "0\n" && count(&builds_dir) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(inodes, inodes_before, "the RUN container's layer");
    assert_eq!(
        server.run(sid, node, "pgrep -x sleep | wc -l").await.stdout,
        "0\n"
    );
    assert_eq!(count(&builds_dir), 0);

    server.finish(sid).await;
}
