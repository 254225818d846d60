//! `docker run` and friends inside an instance: containers are nested
//! sandboxes (own mount, pid, uts and ipc namespaces; the instance's user
//! and network namespaces and cgroups). Needs root.

use playground_tests::TestServer;

#[tokio::test(flavor = "multi_thread")]
async fn docker_runs_containers_inside_an_instance() {
    let (server, sid, node) = TestServer::with_instance(&[]).await;
    let run = |script: &'static str| {
        let server = &server;
        let sid = sid.clone();
        let node = node.clone();
        async move {
            let out = server.exec(&sid, &node, script).await;
            eprintln!(
                "$ {script}\n{}{}[exit {}]",
                out.stdout, out.stderr, out.exit_code
            );
            out
        }
    };

    let created = run("docker pull -q busybox >/dev/null && docker create --name c1 busybox echo hello && docker start c1 && sleep 1 && docker logs c1 && docker ps -a --format '{{.Names}} {{.Status}}'").await;
    assert_eq!(created.exit_code, 0, "{created:?}");
    assert!(
        created.stdout.contains("c1\nhello\nc1 Exited (0)"),
        "{created:?}"
    );

    let again = run("docker create --name c1 busybox true").await;
    assert!(
        again
            .stderr
            .contains("Conflict. The container name \"/c1\" is already in use"),
        "{again:?}"
    );
    let rmi = run("docker rmi busybox").await;
    assert!(
        rmi.stderr.contains(
            "conflict: unable to remove repository reference \"busybox\" (must force) - container"
        ),
        "{rmi:?}"
    );
    let rm = run("docker rm c1 && docker ps -aq | wc -l && docker logs c1").await;
    assert!(rm.stdout.starts_with("c1\n0\n"), "{rm:?}");
    assert!(rm.stderr.contains("No such container: c1"), "{rm:?}");
}
