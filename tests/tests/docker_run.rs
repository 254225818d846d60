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

    let hello = run("docker pull -q busybox; timeout -s KILL 10 docker create --name c1 busybox echo hello; timeout -s KILL 10 docker start c1; sleep 1; timeout -s KILL 5 docker ps -a; timeout -s KILL 5 docker logs c1; timeout -s KILL 10 docker run busybox echo hi").await;
    assert_eq!(hello.exit_code, 0, "{hello:?}");
    assert!(hello.stdout.ends_with("hello\n"), "{hello:?}");
}
