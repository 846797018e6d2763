namespace ParamDb.Protocol;

/// <summary>
/// A rejected request: the HTTP status, the stable machine-readable <see cref="Code"/> from
/// <see cref="ProblemCodes"/>, and a <see cref="Detail"/> a person can act on.
/// </summary>
/// <param name="Status">HTTP status (400, 404, 409, 413, 415…).</param>
/// <param name="Code">Stable code, e.g. <c>unsorted_keys</c>.</param>
/// <param name="Detail">What was wrong, with the offending values.</param>
public readonly record struct ProtocolError(int Status, string Code, string Detail)
{
    /// <summary>True for the default value, which carries no error.</summary>
    public bool IsNone => Code is null;
}

/// <summary>The stable problem codes clients switch on. Codes are only ever added, never renamed.</summary>
public static class ProblemCodes
{
    /// <summary>404: no table of that name.</summary>
    public const string TableNotFound = "table_not_found";
    /// <summary>409: a table of that name exists with another schema.</summary>
    public const string TableExists = "table_exists";
    /// <summary>400: the table name is not <c>[A-Za-z0-9_.-]{1,128}</c>.</summary>
    public const string InvalidTableName = "invalid_table_name";
    /// <summary>400: the schema is not valid (dim, initializer, updater).</summary>
    public const string InvalidSchema = "invalid_schema";
    /// <summary>400: the block's or JSON's row width is not the table's dim.</summary>
    public const string DimMismatch = "dim_mismatch";
    /// <summary>400: keys are not strictly ascending.</summary>
    public const string UnsortedKeys = "unsorted_keys";
    /// <summary>400: the same key appears twice.</summary>
    public const string DuplicateKeys = "duplicate_keys";
    /// <summary>400: a key is at or above the table's <c>maxKey</c>, or a range overflows 2^64.</summary>
    public const string KeyOutOfRange = "key_out_of_range";
    /// <summary>400: the block does not start with "PDB1".</summary>
    public const string BadMagic = "bad_magic";
    /// <summary>400: a block version this server does not speak.</summary>
    public const string UnsupportedVersion = "unsupported_version";
    /// <summary>400: unknown flag bits, a non-zero reserved field, or VALUES where none belong (or missing).</summary>
    public const string BadFlags = "bad_flags";
    /// <summary>400: the body is shorter than the header says.</summary>
    public const string Truncated = "truncated";
    /// <summary>400: the body is longer than the header says.</summary>
    public const string LengthMismatch = "length_mismatch";
    /// <summary>413: more rows than the configured key limit, or a count whose size overflows.</summary>
    public const string TooManyKeys = "too_many_keys";
    /// <summary>400: a malformed JSON body or stream frame.</summary>
    public const string BadFrame = "bad_frame";
    /// <summary>413: the body, or its decompressed size, exceeds the configured limit.</summary>
    public const string BodyTooLarge = "body_too_large";
    /// <summary>400: the body claims LZ4 but is not a valid LZ4 frame.</summary>
    public const string BadCompression = "bad_compression";
    /// <summary>
    /// 400: an import that is not a table export: a malformed safetensors header, tensors other than
    /// <c>keys</c> (U64 [n]) and <c>values</c> (F32 [n, dim]), offsets that do not tile the data, or missing
    /// schema metadata.
    /// </summary>
    public const string BadSafetensors = "bad_safetensors";
    /// <summary>415: a media type or content encoding the server does not accept.</summary>
    public const string UnsupportedMediaType = "unsupported_media_type";
    /// <summary>406: an <c>Accept</c> the server cannot produce.</summary>
    public const string NotAcceptable = "not_acceptable";
    /// <summary>400: a header carries a value that does not parse.</summary>
    public const string BadHeader = "bad_header";
    /// <summary>
    /// 400: the <c>Host</c> header names a host this node does not answer (a node listening on loopback answers
    /// loopback names, plus <c>--allowed-hosts</c>): the defence against DNS rebinding.
    /// </summary>
    public const string HostNotAllowed = "host_not_allowed";
    /// <summary>
    /// 403: a request that would change state comes from a web page of another site (<c>Sec-Fetch-Site: cross-site</c>,
    /// or an <c>Origin</c> that is neither the node's host nor loopback); nothing was changed.
    /// </summary>
    public const string CrossSiteRequest = "cross_site_request";
    /// <summary>408: a consistent pull waited past its timeout.</summary>
    public const string ClockWaitTimeout = "clock_wait_timeout";
    /// <summary>404: no registered worker has that id (it never registered, or it left).</summary>
    public const string WorkerNotFound = "worker_not_found";
    /// <summary>400: the worker registration is not valid (name, tables, lease).</summary>
    public const string InvalidWorker = "invalid_worker";
    /// <summary>503: the server is starting or stopping.</summary>
    public const string Unavailable = "unavailable";
    /// <summary>404: no such route or resource.</summary>
    public const string NotFound = "not_found";
    /// <summary>405: the route exists but not for that method.</summary>
    public const string MethodNotAllowed = "method_not_allowed";
    /// <summary>505: <c>POST /v1/stream</c> over HTTP/1.x; the stream needs HTTP/2 (the h2c port, 7421 by default).</summary>
    public const string Http2Required = "http2_required";
    /// <summary>429: a stream already holds its limit of pulls waiting for clocks (<c>--stream-max-waiting</c>).</summary>
    public const string TooManyWaitingPulls = "too_many_waiting_pulls";
    /// <summary>404: no snapshot has that name.</summary>
    public const string SnapshotNotFound = "snapshot_not_found";
    /// <summary>409: a snapshot of that name already exists; snapshots are never overwritten.</summary>
    public const string SnapshotExists = "snapshot_exists";
    /// <summary>400: a snapshot name outside <c>[A-Za-z0-9_.-]{1,128}</c>, or one starting with a dot.</summary>
    public const string InvalidSnapshotName = "invalid_snapshot_name";
    /// <summary>409: the snapshot's files fail their checksums; nothing was changed, and the detail names the file.</summary>
    public const string SnapshotDamaged = "snapshot_damaged";
    /// <summary>409: another restore is running on this node.</summary>
    public const string RestoreInProgress = "restore_in_progress";
    /// <summary>
    /// 400: a push or import holds NaN or ±Infinity (in JSON, a number beyond float32's range) and the table's schema
    /// does not say <c>"allowNonFinite": true</c>; the detail names the first bad row, its key and the element.
    /// </summary>
    public const string NonFiniteValue = "non_finite_value";
    /// <summary>400: a request the server could not read, for a reason no other code names.</summary>
    public const string BadRequest = "bad_request";
    /// <summary>500: a fault inside the server; the detail says what.</summary>
    public const string Internal = "internal_error";
    /// <summary>421: the request was sliced by a ring epoch in which this node does not own some of its keys; refetch GET /v1/cluster.</summary>
    public const string WrongNode = "wrong_node";
    /// <summary>503: the cluster has no leader to take a metadata change right now; retry after the Retry-After seconds.</summary>
    public const string NoLeader = "no_leader";
    /// <summary>409: a node with that id, or at that Raft address, is already a member.</summary>
    public const string NodeIdTaken = "node_id_taken";
    /// <summary>409: a node cannot join a cluster that already holds tables (moving rows to it comes with replication).</summary>
    public const string ClusterNotEmpty = "cluster_not_empty";
    /// <summary>501: the operation is not built for clusters yet (snapshots, restore).</summary>
    public const string NotSupportedInCluster = "not_supported_in_cluster";
    /// <summary>404: this node is not a member of a cluster (a cluster route on a single node).</summary>
    public const string NotInCluster = "not_in_cluster";
    /// <summary>403: a cluster peer route without the right <c>--cluster-secret</c>.</summary>
    public const string PeerRefused = "peer_refused";
    /// <summary>404: a ring token that ends none of this node's ranges (a peer's range transfer).</summary>
    public const string RangeNotFound = "range_not_found";
    /// <summary>409: a peer asked to drop a range this node serves (it is the range's primary).</summary>
    public const string RangeServed = "range_served";
    /// <summary>400: a record batch of a peer's range transfer that does not parse or does not fit the table.</summary>
    public const string BadRecords = "bad_records";
    /// <summary>
    /// 409: a heartbeat from a node started with another <c>--down-after</c> than the leader's. Leases are safe only
    /// when every node agrees on it (a longer lease could outlive the leader's down declaration), so the leader grants
    /// none; start every node with the same value.
    /// </summary>
    public const string DownAfterMismatch = "down_after_mismatch";
}
