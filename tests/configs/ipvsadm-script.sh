#!/bin/sh
# A hand-written restore script: commands, bundled options, defaults, an edit and a delete.
ipvsadm -C
ipvsadm -A -t lvs.example.com:http
ipvsadm -at lvs.example.com:http -r web1
ipvsadm -a -t 172.16.10.52:80 -r 192.168.1.5:8080 -m -w 2
ipvsadm -e -t 172.16.10.52:80 -r 192.168.1.5:8080 -m -w 5
ipvsadm -A -t 172.16.10.52:22 -s rr -p
ipvsadm -a -t 172.16.10.52:22 -r 192.168.1.4 -m
ipvsadm -A -t 172.16.10.52:23 -s rr
ipvsadm -D -t 172.16.10.52:23
ipvsadm --add-service --udp-service=172.16.10.52:514 --scheduler=lc
ipvsadm --add-server --udp-service=172.16.10.52:514 --real-server=192.168.1.4:514 --masquerading --weight=4
