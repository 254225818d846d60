//! The `docker` client inside an instance talks to the playground's own
//! Engine API on /var/run/docker.sock: version, image pull (from the
//! offline images: this host has no Docker Hub), list, tag, remove, errors
//! in Docker's words, one image list per instance, and a socket that
//! survives a `kill -9` of the server. Needs root.

use playground_tests::TestServer;

#[tokio::test(flavor = "multi_thread")]
async fn docker_client_in_an_instance_manages_images_through_our_engine() {
    let (server, sid, node1) = TestServer::with_instance(&[]).await;
    let run = |script: &'static str| {
        let server = &server;
        let sid = sid.clone();
        let node = node1.clone();
        async move { server.exec(&sid, &node, script).await }
    };

    let version = run("docker version").await;
    eprintln!("{}", version.stdout);
    assert_eq!(version.exit_code, 0, "{version:?}");
    assert!(version.stdout.contains("Client:"), "{}", version.stdout);
    assert!(version.stdout.contains("Server:"), "{}", version.stdout);
    assert!(
        version
            .stdout
            .contains("API version:      1.41 (minimum version 1.12)"),
        "{}",
        version.stdout
    );

    let before = run("docker image ls").await;
    assert_eq!(before.exit_code, 0, "{before:?}");
    assert!(before.stdout.starts_with("REPOSITORY"), "{}", before.stdout);
    assert!(!before.stdout.contains("busybox"), "{}", before.stdout);

    let pull = run("docker pull busybox").await;
    eprintln!("{}", pull.stdout);
    assert_eq!(pull.exit_code, 0, "{pull:?}");
    assert!(
        pull.stdout.contains("latest: Pulling from library/busybox"),
        "{}",
        pull.stdout
    );
    assert!(pull.stdout.contains("Digest: sha256:"), "{}", pull.stdout);
    assert!(
        pull.stdout
            .contains("Status: Downloaded newer image for busybox:latest"),
        "{}",
        pull.stdout
    );
    let again = run("docker pull busybox").await;
    assert!(
        again
            .stdout
            .contains("Status: Image is up to date for busybox:latest"),
        "{}",
        again.stdout
    );

    let after = run("docker image ls --format '{{.Repository}} {{.Tag}}'; docker image ls").await;
    assert!(
        after.stdout.starts_with("busybox latest\n"),
        "{}",
        after.stdout
    );
    let table: Vec<&str> = after.stdout.lines().skip(1).collect();
    assert!(table[0].starts_with("REPOSITORY"), "{}", after.stdout);
    let row: Vec<&str> = table[1].split_whitespace().collect();
    assert_eq!(&row[..2], ["busybox", "latest"], "{}", after.stdout);

    let inspect = run("docker image inspect --format '{{json .Config.Cmd}}' busybox").await;
    assert_eq!(inspect.stdout.trim(), "[\"sh\"]", "{inspect:?}");

    let tag = run(
        "docker tag busybox mybox:1 && docker image ls --format '{{.Repository}}:{{.Tag}}' | sort",
    )
    .await;
    assert_eq!(tag.stdout, "busybox:latest\nmybox:1\n", "{tag:?}");
    let rmi = run("docker rmi mybox:1").await;
    assert_eq!(rmi.exit_code, 0, "{rmi:?}");
    assert_eq!(rmi.stdout, "Untagged: mybox:1\n");

    let missing = run("docker rmi nosuch").await;
    assert_ne!(missing.exit_code, 0);
    assert!(
        missing.stderr.contains("Error: No such image: nosuch"),
        "{missing:?}"
    );
    let denied = run("docker pull nosuch").await;
    assert_ne!(denied.exit_code, 0);
    assert!(
        denied
            .stderr
            .contains("pull access denied for nosuch, repository does not exist or may require 'docker login'"),
        "{denied:?}"
    );
    // Containers run (see docker_run.rs); --rm leaves none behind.
    let run_it = run("docker run --rm busybox true").await;
    assert_eq!(run_it.exit_code, 0, "{run_it:?}");

    let containers = run("curl -sS --unix-socket /var/run/docker.sock http://localhost/containers/json; echo; stat -c %a /var/run/docker.sock").await;
    assert_eq!(containers.stdout, "[]\n660\n", "{containers:?}");

    // A second instance has its own (empty) list, and pulls from the
    // shared store.
    let node2 = server.add_instance(&sid).await;
    let other = server
        .exec(&sid, &node2, "docker image ls --format '{{.Repository}}'")
        .await;
    assert_eq!(other.exit_code, 0, "{other:?}");
    assert_eq!(other.stdout, "", "node2 sees node1's images");
    let other = server
        .exec(&sid, &node2, "docker pull -q debian:bookworm-slim && docker image ls --format '{{.Repository}}:{{.Tag}}'")
        .await;
    assert!(
        other.stdout.ends_with("debian:bookworm-slim\n"),
        "{other:?}"
    );
    let mine = run("docker image ls --format '{{.Repository}}'").await;
    assert_eq!(mine.stdout, "busybox\n");

    // The socket belongs to the instance: a killed and restarted server
    // serves it again, with the instance's images.
    let data_dir = server.crash().await;
    let server = TestServer::start_in(data_dir, &[]).await;
    let back = server
        .exec(
            &sid,
            &node1,
            "docker image ls --format '{{.Repository}}:{{.Tag}}'",
        )
        .await;
    assert_eq!(back.exit_code, 0, "{back:?}");
    assert_eq!(back.stdout, "busybox:latest\n");

    server.stop().await;
}
