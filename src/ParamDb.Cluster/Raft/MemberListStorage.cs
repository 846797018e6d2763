using System.Net;
using DotNext.Buffers;
using DotNext.Net;
using DotNext.Net.Cluster.Consensus.Raft.Membership;

namespace ParamDb.Cluster.Raft;

/// <summary>
/// The Raft group's membership (the voters' TCP endpoints) in one file, so a restarted member rejoins with the
/// configuration it last saw instead of needing a cold start or an add. Endpoints are written with DotNext's
/// <see cref="EndPointFormatter"/>.
/// </summary>
internal sealed class MemberListStorage(string fileName) : PersistentClusterConfigurationStorage<EndPoint>(fileName)
{
    protected override void Encode(EndPoint address, ref BufferWriterSlim<byte> writer) => writer.WriteEndPoint(address);

    protected override EndPoint Decode(ref SequenceReader reader) => reader.ReadEndPoint();
}
