//! The tutorial end to end over real TCP with tiberius: the admin's setup,
//! the VM identity's login and query, and every way it can be refused.

mod common;

use common::{
    DB, Mint, SERVER, admin, connect, dup_a, server_error, start, token, token_with,
    tutorial_setup, vm,
};
use mic_tds::{LoginOutcome, TOKEN_PRINCIPAL};
use rstest::rstest;

const LOGIN_FAILED: &str = "Login failed for user '<token-identified principal>'.";

async fn rows(client: &mut common::Conn, sql: &str) -> tiberius::Result<Vec<tiberius::Row>> {
    client.simple_query(sql).await?.into_first_result().await
}

/// Runs a batch; tiberius reports an early error from `simple_query` itself
/// and a later one from the result stream, so fold both.
async fn run(client: &mut common::Conn, sql: &str) -> tiberius::Result<Vec<Vec<tiberius::Row>>> {
    client.simple_query(sql).await?.into_results().await
}

#[tokio::test]
async fn admin_setup_then_vm_reads_rows() {
    let server = start().await;
    tutorial_setup(&server, true).await;

    let users = server.state().users(DB).unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].name, "myVM");
    assert_eq!(users[0].object_id, vm().object_id);
    assert!(users[0].roles.contains("db_datareader"));

    let mut client = connect(&server, Some(DB), &token(&vm()))
        .await
        .expect("vm login");
    let result = rows(&mut client, "SELECT * FROM Products").await.unwrap();
    assert_eq!(result.len(), 2);
    assert_eq!(result[0].get::<i32, _>("id"), Some(1));
    assert_eq!(result[0].get::<&str, _>("name"), Some("Widget"));
    assert_eq!(result[0].get::<&str, _>("code"), Some("W-1"));
    assert_eq!(result[1].get::<&str, _>("name"), Some("Gädget ✓"));
    assert_eq!(result[1].get::<&str, _>("code"), None);

    let result = rows(
        &mut client,
        "select name, [id] from dbo.Products where id = 2",
    )
    .await
    .unwrap();
    assert_eq!(result.len(), 1);
    assert_eq!(result[0].get::<&str, _>(0), Some("Gädget ✓"));
    assert_eq!(result[0].get::<i32, _>(1), Some(2));

    let who = rows(
        &mut client,
        "SELECT SUSER_SNAME() AS login, USER_NAME() AS usr, DB_NAME()",
    )
    .await
    .unwrap();
    assert_eq!(who[0].get::<&str, _>("login"), Some("myVM"));
    assert_eq!(who[0].get::<&str, _>("usr"), Some("myVM"));
    assert_eq!(who[0].get::<&str, _>(2), Some(DB));

    // tiberius' `query` goes through sp_executesql (RPC), not SQLBatch.
    let via_rpc = client
        .query("SELECT id FROM Products WHERE name = 'widget'", &[])
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert_eq!(via_rpc.len(), 1);
    assert_eq!(via_rpc[0].get::<i32, _>(0), Some(1));

    // A reader cannot write.
    let e = run(
        &mut client,
        "INSERT INTO Products (id, name) VALUES (3, 'x')",
    )
    .await
    .unwrap_err();
    let (n, _, _, msg, _) = server_error(&e);
    assert_eq!(n, 229);
    assert_eq!(
        msg,
        "The INSERT permission was denied on the object 'Products', database 'mydb', schema 'dbo'."
    );
    client.close().await.unwrap();
}

#[tokio::test]
async fn vm_without_contained_user_gets_18456() {
    let server = start().await;
    let e = connect(&server, Some(DB), &token(&vm())).await.unwrap_err();
    let (number, class, state, message, server_name) = server_error(&e);
    assert_eq!(number, 18456);
    assert_eq!(class, 14);
    assert_eq!(state, 1);
    assert_eq!(message, LOGIN_FAILED);
    assert_eq!(server_name, SERVER);
    assert_eq!(
        message,
        format!("Login failed for user '{TOKEN_PRINCIPAL}'.")
    );

    let events = server.state().login_events();
    let last = events.last().unwrap();
    assert_eq!(last.principal.as_ref().unwrap().object_id, vm().object_id);
    assert!(
        matches!(&last.outcome, LoginOutcome::Rejected { error: 18456, reason } if reason.contains("neither")),
        "{last:?}"
    );
}

#[tokio::test]
async fn vm_with_user_but_no_reader_role_gets_229() {
    let server = start().await;
    tutorial_setup(&server, false).await;
    let mut client = connect(&server, Some(DB), &token(&vm()))
        .await
        .expect("login");
    let e = rows(&mut client, "SELECT * FROM Products")
        .await
        .unwrap_err();
    let (number, class, state, message, _) = server_error(&e);
    assert_eq!((number, class, state), (229, 14, 5));
    assert_eq!(
        message,
        "The SELECT permission was denied on the object 'Products', database 'mydb', schema 'dbo'."
    );
    // The connection survives a statement error.
    let who = rows(&mut client, "SELECT USER_NAME()").await.unwrap();
    assert_eq!(who[0].get::<&str, _>(0), Some("myVM"));
}

#[rstest]
#[case::signed_by_another_key(Mint { rogue_key: true, ..Mint::default() }, "InvalidSignature")]
#[case::arm_audience(Mint { audience: common::ARM_AUDIENCE.into(), ..Mint::default() }, "InvalidAudience")]
#[case::expired(Mint { not_before: -7200, expires: -3600, ..Mint::default() }, "ExpiredSignature")]
#[case::not_yet_valid(Mint { not_before: 3600, expires: 7200, ..Mint::default() }, "ImmatureSignature")]
#[case::other_issuer(Mint { issuer: "https://sts.windows.net/evil/".into(), ..Mint::default() }, "InvalidIssuer")]
#[tokio::test]
async fn bad_tokens_get_18456(#[case] mint: Mint, #[case] reason: &str) {
    let server = start().await;
    // Even the admin's identity is refused with a bad token.
    let e = connect(&server, Some(DB), &token_with(&admin(), &mint))
        .await
        .unwrap_err();
    let (number, class, state, message, _) = server_error(&e);
    assert_eq!((number, class, state), (18456, 14, 1));
    assert_eq!(message, LOGIN_FAILED);
    let events = server.state().login_events();
    match &events.last().unwrap().outcome {
        LoginOutcome::Rejected { error, reason: why } => {
            assert_eq!(*error, 18456);
            assert!(why.contains(reason), "{why}");
        }
        LoginOutcome::Accepted => panic!("accepted"),
    }
}

#[tokio::test]
async fn audience_without_trailing_slash_is_accepted() {
    let server = start().await;
    let mint = Mint {
        audience: "https://database.windows.net".into(),
        ..Mint::default()
    };
    let mut client = connect(&server, None, &token_with(&admin(), &mint))
        .await
        .expect("login");
    let r = rows(&mut client, "SELECT DB_NAME(), USER_NAME()")
        .await
        .unwrap();
    assert_eq!(r[0].get::<&str, _>(0), Some("master"));
    assert_eq!(r[0].get::<&str, _>(1), Some("dbo"));
}

#[tokio::test]
async fn unknown_database_gets_4060() {
    let server = start().await;
    let e = connect(&server, Some("nope"), &token(&admin()))
        .await
        .unwrap_err();
    let (number, class, _, message, _) = server_error(&e);
    assert_eq!((number, class), (4060, 11));
    assert_eq!(
        message,
        "Cannot open database \"nope\" requested by the login. The login failed."
    );
}

#[rstest]
#[case::unknown(
    "CREATE USER [ghost] FROM EXTERNAL PROVIDER",
    33130,
    "Principal 'ghost' could not be found or this principal type is not supported."
)]
#[case::ambiguous(
    "CREATE USER [dupApp] FROM EXTERNAL PROVIDER",
    33131,
    "Principal 'dupApp' has a duplicate display name. Make the display name unique in Azure Active Directory and execute this statement again."
)]
#[case::duplicate(
    "CREATE USER [myVM] FROM EXTERNAL PROVIDER; CREATE USER [myvm] FROM EXTERNAL PROVIDER",
    15023,
    "User, group, or role 'myvm' already exists in the current database."
)]
#[case::alter_role_unknown_member(
    "ALTER ROLE db_datareader ADD MEMBER [ghost]",
    15151,
    "Cannot add the principal 'ghost', because it does not exist or you do not have permission."
)]
#[case::alter_unknown_role(
    "ALTER ROLE db_wizard ADD MEMBER [ghost]",
    15151,
    "Cannot alter the role 'db_wizard', because it does not exist or you do not have permission."
)]
#[case::use_other_db(
    "USE master",
    40508,
    "USE statement is not supported to switch between databases. Use a new connection to connect to a different database."
)]
#[case::syntax("SELEKT 1", 102, "Incorrect syntax near 'SELEKT'.")]
#[case::unsupported(
    "DELETE FROM t",
    40517,
    "Keyword or statement option 'DELETE' is not supported in this version of SQL Server."
)]
#[case::missing_table("SELECT * FROM nope", 208, "Invalid object name 'nope'.")]
#[tokio::test]
async fn admin_statement_errors(#[case] sql: &str, #[case] number: u32, #[case] message: &str) {
    let server = start().await;
    let mut client = connect(&server, Some(DB), &token(&admin())).await.unwrap();
    let e = run(&mut client, sql).await.unwrap_err();
    let (n, _, _, m, s) = server_error(&e);
    assert_eq!((n, m.as_str(), s.as_str()), (number, message, SERVER));
    // Still usable afterwards.
    assert_eq!(
        rows(&mut client, "SELECT 1").await.unwrap()[0].get::<i32, _>(0),
        Some(1)
    );
}

#[tokio::test]
async fn non_admin_cannot_create_users() {
    let server = start().await;
    tutorial_setup(&server, true).await;
    let mut client = connect(&server, Some(DB), &token(&vm())).await.unwrap();
    let e = run(&mut client, "CREATE USER [dupApp] FROM EXTERNAL PROVIDER")
        .await
        .unwrap_err();
    assert_eq!(server_error(&e).0, 15247);
    let e = run(&mut client, "ALTER ROLE db_owner ADD MEMBER [myVM]")
        .await
        .unwrap_err();
    assert_eq!(server_error(&e).0, 15151);
}

#[tokio::test]
async fn seeding_through_state_and_execute_as_admin() {
    let server = start().await;
    server
        .execute_as_admin(
            DB,
            "CREATE TABLE t (a int, b varchar(5)); INSERT INTO t VALUES (7, 'seven')",
        )
        .unwrap();
    server
        .state()
        .add_user(DB, "other app", &dup_a(), &["db_datareader"])
        .unwrap();
    let mut client = connect(&server, Some(DB), &token(&dup_a())).await.unwrap();
    let r = rows(&mut client, "SELECT b FROM t WHERE a = '7'")
        .await
        .unwrap();
    assert_eq!(r[0].get::<&str, _>(0), Some("seven"));
    let e = server
        .execute_as_admin(DB, "INSERT INTO t VALUES (1, 'toolong')")
        .unwrap_err();
    assert_eq!(e.number, 2628);
    let (_, rows_now) = server.state().table(DB, "t").unwrap();
    assert_eq!(rows_now.len(), 1);
}

#[tokio::test]
async fn insert_reports_row_counts_and_multiple_results() {
    let server = start().await;
    let mut client = connect(&server, Some(DB), &token(&admin())).await.unwrap();
    let r = client.execute("CREATE TABLE n (v int)", &[]).await.unwrap();
    assert_eq!(r.total(), 0);
    let r = client
        .execute("INSERT INTO n VALUES (1), (2), (3)", &[])
        .await
        .unwrap();
    assert_eq!(r.total(), 3);
    let results = client
        .simple_query("SELECT * FROM n; SELECT v FROM n WHERE v = 2")
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].len(), 3);
    assert_eq!(results[1].len(), 1);
}

#[tokio::test]
async fn shutdown_closes_the_listener() {
    let server = start().await;
    let addr = server.addr();
    let mut open = connect(&server, None, &token(&admin())).await.unwrap();
    server.shutdown();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    // Established connections are closed too.
    assert!(rows(&mut open, "SELECT 1").await.is_err());
}
