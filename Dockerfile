# syntax=docker/dockerfile:1
# Build: docker build -t paramdb .
# Run:   docker run -p 7420:7420 -p 7421:7421 -v paramdb-data:/data paramdb
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
# The OpenAPI document is committed; no need to regenerate it inside the image build.
RUN dotnet publish src/ParamDb.Server -c Release -o /app -p:OpenApiGenerateDocumentsOnBuild=false

FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /app .
# The ASP.NET images ship a non-root user "app" (uid 1654); the data volume belongs to it.
RUN mkdir -p /data && chown app:app /data
USER app
# Inside a container the node listens on all interfaces; publish the ports to choose who can reach it.
ENV ParamDb__Data=/data \
    ParamDb__Listen=0.0.0.0:7420 \
    ParamDb__ListenH2=0.0.0.0:7421
VOLUME /data
EXPOSE 7420 7421
# SIGTERM (docker stop) takes a final checkpoint; give it time: docker stop -t 60.
STOPSIGNAL SIGTERM
ENTRYPOINT ["dotnet", "paramdb.dll"]
