module github.com/wirescope/wirescope/test/grpcapps

go 1.26.0

require (
	github.com/graph-gophers/graphql-go v1.11.1
	golang.org/x/net v0.63.0
	google.golang.org/grpc v1.85.0
	google.golang.org/grpc/examples v0.0.0-20260825154716-030ee8becb20
)

require (
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.44.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

tool (
	google.golang.org/grpc/examples/route_guide/client
	google.golang.org/grpc/examples/route_guide/server
)
