//! The Docker walkthrough as a learner meets it: the classic Play with
//! Docker tutorial typed into an instance's terminal (its steps are in
//! `playground_tests::walkthrough`, shared with the nesting profile's
//! test), the Engine API through curl as the docs show it, and what
//! running many containers costs an instance (shared image layers, one
//! memory limit for all, isolation from the session's other instances).
//! Needs root.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use playground_protocol::ExecResponse;
use playground_tests::walkthrough::{self, is_hex, rows, CONTAINERS, IMAGES};
use playground_tests::{leftovers, TestServer};

#[tokio::test(flavor = "multi_thread")]
async fn the_play_with_docker_walkthrough_through_the_terminal() {
    let (server, sid, node) = TestServer::with_instance(&[]).await;
    walkthrough::play_with_docker(&server, &sid, &node).await;
    server.finish(&sid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_on_the_docker_socket_as_the_docs_show() {
    let (server, sid, node) = TestServer::with_instance(&[]).await;
    let curl =
        |path: &str| format!("curl -sS --unix-socket /var/run/docker.sock http://localhost{path}");
    let json = |out: &ExecResponse| -> serde_json::Value {
        assert_eq!(out.exit_code, 0, "{out:?}");
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", out.stdout))
    };

    let out = server.run(&sid, &node, &curl("/_ping")).await;
    assert_eq!(out.stdout, "OK", "{out:?}");
    let version = json(&server.run(&sid, &node, &curl("/version")).await);
    assert_eq!(version["ApiVersion"], "1.41", "{version}");
    assert_eq!(version["MinAPIVersion"], "1.12", "{version}");
    assert_eq!(version["Os"], "linux", "{version}");
    let empty = json(&server.run(&sid, &node, &curl("/containers/json")).await);
    assert_eq!(empty, serde_json::json!([]));

    let out = server
        .run(
            &sid,
            &node,
            "docker run -d --name sleeper busybox sleep 1000",
        )
        .await;
    assert_eq!(out.exit_code, 0, "{out:?}");
    let id = out.stdout.trim();
    assert!(is_hex(id, 64), "{out:?}");

    let list = json(&server.run(&sid, &node, &curl("/containers/json")).await);
    let list = list.as_array().expect("an array");
    assert_eq!(list.len(), 1, "{list:?}");
    let c = &list[0];
    assert_eq!(c["Id"], id, "{c}");
    assert_eq!(c["Names"], serde_json::json!(["/sleeper"]), "{c}");
    assert_eq!(c["Image"], "busybox", "{c}");
    assert_eq!(c["Command"], "sleep 1000", "{c}");
    assert_eq!(c["State"], "running", "{c}");
    assert!(c["Status"].as_str().unwrap().starts_with("Up "), "{c}");

    // Versioned paths, as SDKs call them; one container by name.
    let one = json(
        &server
            .run(&sid, &node, &curl("/v1.41/containers/sleeper/json"))
            .await,
    );
    assert_eq!(one["Id"], id, "{one}");
    assert_eq!(one["Name"], "/sleeper", "{one}");
    assert_eq!(one["State"]["Running"], true, "{one}");
    assert!(one["State"]["Pid"].as_u64().unwrap() > 0, "{one}");

    let images = json(&server.run(&sid, &node, &curl("/images/json")).await);
    let images = images.as_array().expect("an array");
    assert_eq!(images.len(), 1, "{images:?}");
    assert_eq!(images[0]["RepoTags"], serde_json::json!(["busybox:latest"]));
    assert!(
        images[0]["Id"]
            .as_str()
            .unwrap()
            .strip_prefix("sha256:")
            .is_some_and(|h| is_hex(h, 64)),
        "{images:?}"
    );
    assert!(
        images[0]["Size"].as_u64().unwrap() > 1_000_000,
        "{images:?}"
    );

    // Stopped containers show with ?all=1 only.
    let out = server.run(&sid, &node, "docker stop -t 1 sleeper").await;
    assert_eq!(out.stdout, "sleeper\n", "{out:?}");
    let running = json(&server.run(&sid, &node, &curl("/containers/json")).await);
    assert_eq!(running, serde_json::json!([]));
    let all = json(
        &server
            .run(&sid, &node, &curl("/containers/json?all=1"))
            .await,
    );
    assert_eq!(all[0]["State"], "exited", "{all}");

    server.finish(&sid).await;
}

/// The one instance directory of the session `sid` under `data_dir`.
fn instance_dir(data_dir: &Path, sid: &str) -> PathBuf {
    let tag = sid.replace('-', "");
    let dirs: Vec<PathBuf> = std::fs::read_dir(data_dir.join("instances"))
        .unwrap()
        .flatten()
        .map(|d| d.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(&tag))
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.into_iter().next().unwrap()
}

/// Bytes the host has allocated for a (sparse) file.
fn allocated(path: &Path) -> u64 {
    // SAFETY: flushing dirty pages has no memory-safety preconditions.
    unsafe { libc::sync() };
    std::fs::metadata(path).unwrap().blocks() * 512
}

/// `used-KiB used-inodes` of the instance's root file system, after a sync.
const DF: &str =
    "sync; df -Pk / | awk 'NR==2 {printf \"%s \", $3}'; df -Pi / | awk 'NR==2 {print $3}'";

fn df_numbers(out: &ExecResponse) -> (u64, u64) {
    let n: Vec<u64> = out
        .stdout
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(n.len(), 2, "{out:?}");
    (n[0], n[1])
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_containers_share_one_copy_of_the_image_layers() {
    let (server, sid, node) = TestServer::with_instance(&[]).await;
    let layers_dir = server.data_dir.path().join("oci/layers");
    let disk = instance_dir(server.data_dir.path(), &sid).join("disk.img");

    let out = server.run(&sid, &node, "docker pull -q busybox").await;
    assert_eq!(out.exit_code, 0, "{out:?}");
    // The store's unpacked layers: one directory per layer, by diff_id.
    let layers_before: Vec<String> = std::fs::read_dir(&layers_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let holders: Vec<PathBuf> = layers_before
        .iter()
        .map(|l| layers_dir.join(l))
        .filter(|l| l.join("root/bin/busybox").exists())
        .collect();
    assert_eq!(holders.len(), 1, "busybox's layer: {holders:?}");
    let store_file = std::fs::metadata(holders[0].join("root/bin/busybox")).unwrap();
    let layer_bytes: u64 = std::fs::read_to_string(holders[0].join("size"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        layer_bytes > 1 << 20,
        "busybox's layer is {layer_bytes} bytes"
    );

    let (used_kib, used_inodes) = df_numbers(&server.run(&sid, &node, DF).await);
    let disk_bytes = allocated(&disk);

    let out = server.run(&sid,
        &node,
        "for i in $(seq 10); do docker run -d --name c$i busybox sleep 1000 >/dev/null || exit; done; docker ps -q | wc -l",
    )
    .await;
    assert_eq!(out.stdout, "10\n", "{out:?}");

    // Every container reads the store's one file: the same inode (overlayfs
    // shows a lower file's own inode number), with its link count.
    let out = server
        .run(
            &sid,
            &node,
            "for i in $(seq 10); do docker exec c$i stat -c '%i %h' /bin/busybox; done",
        )
        .await;
    let expected = format!("{} {}", store_file.ino(), store_file.nlink());
    let seen: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(seen, vec![expected.as_str(); 10], "{out:?}");
    // The store unpacked nothing more.
    let mut layers_after: Vec<String> = std::fs::read_dir(&layers_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    layers_after.sort();
    let mut layers_before = layers_before;
    layers_before.sort();
    assert_eq!(layers_after, layers_before);

    // The instance's disk holds ten small writable layers, not ten copies:
    // all ten together cost less than one copy of the layer.
    let (used_kib_after, used_inodes_after) = df_numbers(&server.run(&sid, &node, DF).await);
    let disk_bytes_after = allocated(&disk);
    let grown = (used_kib_after - used_kib) * 1024;
    let grown_on_host = disk_bytes_after.saturating_sub(disk_bytes);
    let grown_inodes = used_inodes_after - used_inodes;
    eprintln!(
        "ten containers: +{grown} bytes used in the instance, +{grown_on_host} bytes on the host, +{grown_inodes} inodes; the layer is {layer_bytes} bytes"
    );
    assert!(grown < layer_bytes, "{grown} bytes for ten containers");
    assert!(
        grown_on_host < layer_bytes,
        "{grown_on_host} bytes for ten containers"
    );
    // A few each: the writable layer and overlay work directories, /etc
    // with hostname, hosts and resolv.conf.
    assert!(grown_inodes <= 10 * 12, "{grown_inodes} inodes");

    server.finish(&sid).await;
}

/// The instance's memory use in bytes, as the API reports it.
async fn memory_bytes(server: &TestServer, sid: &str) -> (u64, u64) {
    let session = server.session(sid).await.expect("session");
    let stats = session.instances[0].stats.clone().expect("stats");
    (stats.memory_bytes, stats.memory_limit_bytes)
}

/// How many processes the kernel's OOM killer ended in the instance's
/// memory cgroup (v1 `memory.oom_control`, v2 `memory.events`).
fn oom_kills(sid: &str, data_dir: &Path) -> u64 {
    let counters: Vec<u64> = leftovers(sid, data_dir)
        .cgroups
        .iter()
        .filter_map(|dir| {
            let text = std::fs::read_to_string(dir.join("memory.oom_control"))
                .or_else(|_| std::fs::read_to_string(dir.join("memory.events")))
                .ok()?;
            text.lines()
                .find_map(|l| l.strip_prefix("oom_kill "))
                .map(|n| n.parse().unwrap())
        })
        .collect();
    assert_eq!(counters.len(), 1, "the instance's memory cgroup");
    counters[0]
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_limit_holds_across_all_containers_of_an_instance() {
    let (server, sid, node) = TestServer::with_instance(&["--instance-memory-mib=256"]).await;
    let (_, limit) = memory_bytes(&server, &sid).await;
    assert_eq!(limit, 256 << 20);
    let data_dir = server.data_dir.path().to_path_buf();
    assert_eq!(oom_kills(&sid, &data_dir), 0);

    // dd reads 150 MiB of zeros into one buffer (every page touched) and
    // then blocks writing it to a fifo whose reader never reads: it holds
    // the memory for as long as it lives, and it is the container's PID 1.
    let hog = |name: &str| {
        format!(
            "docker run -d --name {name} busybox sh -c 'mkfifo /f; sleep 1000 </f & exec dd if=/dev/zero bs=150M count=1 of=/f' >/dev/null && echo started"
        )
    };
    let out = server.run(&sid, &node, &hog("hog1")).await;
    assert_eq!(out.stdout, "started\n", "{out:?}");
    let since = Instant::now();
    loop {
        let (used, _) = memory_bytes(&server, &sid).await;
        if used > 150 << 20 {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "hog1 never held its memory: {used} bytes used"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Together they need more than the instance has: one is killed.
    let out = server.run(&sid, &node, &hog("hog2")).await;
    assert_eq!(out.stdout, "started\n", "{out:?}");
    let since = Instant::now();
    let states = loop {
        let out = server.run(&sid,
            &node,
            "docker inspect --format '{{.Name}} {{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}}' hog1 hog2",
        )
        .await;
        let states: Vec<String> = out.stdout.lines().map(String::from).collect();
        if states.iter().any(|s| s.contains(" exited ")) {
            break states;
        }
        let (used, _) = memory_bytes(&server, &sid).await;
        assert!(used <= limit, "{used} bytes used");
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "neither was killed: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // Let the survivor settle, then look again: one holds its memory, the
    // other was killed (SIGKILL: 137).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let out = server
        .run(
            &sid,
            &node,
            "docker ps -a --format '{{.Names}} {{.Status}}' | sort; echo alive-$((40+2))",
        )
        .await;
    eprintln!("first seen: {states:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    let killed = lines[..2]
        .iter()
        .filter(|l| l.contains(" Exited (137) "))
        .count();
    let up = lines[..2].iter().filter(|l| l.contains(" Up ")).count();
    assert_eq!((killed, up), (1, 1), "{out:?}");
    // By the kernel, for want of memory in the instance's cgroup, and
    // inspect says so for that one only.
    assert_eq!(oom_kills(&sid, &data_dir), 1);
    let out = server
        .run(
            &sid,
            &node,
            "docker inspect --format '{{.State.ExitCode}} {{.State.OOMKilled}}' hog1 hog2 | sort",
        )
        .await;
    assert_eq!(out.stdout, "0 false\n137 true\n", "{out:?}");
    // The instance's own shell still answers.
    assert_eq!(lines[2], "alive-42", "{out:?}");
    let (used, _) = memory_bytes(&server, &sid).await;
    assert!(used > 150 << 20 && used <= limit, "{used} bytes used");

    server.finish(&sid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_of_a_session_see_only_their_own_containers_and_images() {
    let (server, sid, node1) = TestServer::with_instance(&[]).await;
    let node2 = server.add_instance(&sid).await;

    let out = server.run(&sid,
        &node1,
        "docker run -d --name shared busybox sleep 1000 >/dev/null && docker tag busybox mine:1 && docker ps -a --format '{{.Names}}' && docker image ls --format '{{.Repository}}:{{.Tag}}' | sort",
    )
    .await;
    assert_eq!(out.stdout, "shared\nbusybox:latest\nmine:1\n", "{out:?}");

    let out = server
        .run(
            &sid,
            &node2,
            "docker ps -a; docker image ls; docker logs shared; docker rmi mine:1",
        )
        .await;
    let lines = rows(&out.stdout);
    assert_eq!(lines, [CONTAINERS, IMAGES], "{out:?}");
    assert!(
        out.stderr.contains("Error: No such container: shared"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("Error: No such image: mine:1"),
        "{out:?}"
    );

    // The name is free in node2, and the container there is its own.
    let out = server.run(&sid,
        &node2,
        "docker run --name shared busybox sh -c 'echo from $(hostname)' && docker ps -a --format '{{.Names}} {{.Status}}'",
    )
    .await;
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert!(lines[0].starts_with("from "), "{out:?}");
    assert!(lines[1].starts_with("shared Exited (0) "), "{out:?}");

    // node1's is untouched: still running, its image tags still there.
    let out = server.run(&sid,
        &node1,
        "docker ps -a --format '{{.Names}} {{.Status}}'; docker image ls --format '{{.Repository}}:{{.Tag}}' | sort",
    )
    .await;
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    assert!(lines[0].starts_with("shared Up "), "{out:?}");
    assert_eq!(&lines[1..], ["busybox:latest", "mine:1"], "{out:?}");

    server.finish(&sid).await;
}
